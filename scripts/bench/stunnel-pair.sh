# A stunnel4 client/server pair for the benchmark scripts (sourced, not run; needs processes.sh).
# Configured with the same guarantees as the mesh: TLS 1.3 only, both sides present and verify
# ECDSA P-256 certificates against a throwaway CA and CRL, the client checks the server's name.

# make_stunnel_pki DIR : CA, server and client certificates and an empty CRL in DIR (log: DIR/pki.log).
make_stunnel_pki() {
    local d="$1" n
    (
        cd "$d" || exit 1
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 2 \
            -keyout ca.key -out ca.pem -subj /CN=bench-stunnel-ca \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign || exit 1
        for n in server client; do
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
                -keyout "$n.key" -out "$n.csr" -subj "/CN=stunnel-$n" || exit 1
            printf 'subjectAltName=DNS:stunnel-%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' "$n" >"$n.ext"
            openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 2 \
                -extfile "$n.ext" -out "$n.pem" || exit 1
        done
        : >index.txt; echo 01 >crlnumber
        printf '[ca]\ndefault_ca=bench\n[bench]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=2\n' >ca.cnf
        openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out crl.pem || exit 1
    ) >"$d/pki.log" 2>&1
}

# start_stunnel_pair DIR CLIENT_PORT SERVER_HOST SERVER_PORT TARGET : clients connect to
# 127.0.0.1:CLIENT_PORT, stunnel carries them over TLS to SERVER_HOST:SERVER_PORT, which connects
# to TARGET (host:port). Leaves STUNNEL_SERVER_PID and STUNNEL_CLIENT_PID; fails when the
# certificates cannot be made (the reason is in DIR/pki.log).
start_stunnel_pair() {
    local d="$1" cport="$2" shost="$3" sport="$4" target="$5"
    mkdir -p "$d"
    make_stunnel_pki "$d" || return 1
    local common="sslVersion = TLSv1.3
CAfile = $d/ca.pem
CRLfile = $d/crl.pem
verifyChain = yes
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1"
    cat >"$d/server.conf" <<CONF
foreground = yes
pid =
syslog = no
debug = info
[bench]
accept = $shost:$sport
connect = $target
cert = $d/server.pem
key = $d/server.key
requireCert = yes
$common
CONF
    cat >"$d/client.conf" <<CONF
foreground = yes
pid =
syslog = no
debug = info
[bench]
client = yes
accept = 127.0.0.1:$cport
connect = $shost:$sport
cert = $d/client.pem
key = $d/client.key
checkHost = stunnel-server
$common
CONF
    start_bg "$d/server.log" stunnel4 "$d/server.conf"; STUNNEL_SERVER_PID=$BG_PID
    start_bg "$d/client.log" stunnel4 "$d/client.conf"; STUNNEL_CLIENT_PID=$BG_PID
}

# stunnel_cipher DIR : the TLS 1.3 cipher suite the client negotiated, read from its log (so call it
# after a connection went through), or "unknown".
stunnel_cipher() {
    local cipher
    cipher=$(grep -o -m1 'TLSv1\.3 ciphersuite: [A-Z0-9_]*' "$1/client.log" | awk '{print $3}')
    echo "${cipher:-unknown}"
}

stunnel_version() { stunnel4 -version 2>&1 | awk '/^stunnel [0-9]/{print $2; exit}'; }

# stunnel_description DIR : one line naming the version and the negotiated TLS 1.3 cipher suite.
stunnel_description() {
    echo "stunnel $(stunnel_version), TLS 1.3 cipher suite $(stunnel_cipher "$1"); ECDSA P-256 certificates, verifyChain + CRL on both sides, TCP_NODELAY"
}
