# `ssh -L` through a private sshd on loopback, for the benchmark scripts (sourced, not run; needs
# processes.sh). The system's sshd is never touched: ours has a throwaway host key, one authorized
# throwaway user key that may only forward to the one target, and no password login.

# start_ssh_forward DIR LISTEN_PORT TARGET_HOST TARGET_PORT : clients connect to
# 127.0.0.1:LISTEN_PORT, ssh -N -L carries them to a private sshd on another loopback port, which
# connects to TARGET_HOST:TARGET_PORT. Leaves SSHD_PID and SSH_PID; returns 1 with SSH_ERROR set
# when a step fails.
start_ssh_forward() {
    local d="$1" fwd="$2" thost="$3" tport="$4" port user
    mkdir -p "$d"; chmod 700 "$d"
    user=$(id -un)
    for key in host_key user_key; do
        ssh-keygen -q -t ed25519 -N '' -C "bench-$key" -f "$d/$key" || { SSH_ERROR="ssh-keygen failed"; return 1; }
    done
    port=$(free_port 127.0.0.1)
    printf 'restrict,port-forwarding,permitopen="%s:%s" %s\n' "$thost" "$tport" "$(cat "$d/user_key.pub")" >"$d/authorized_keys"
    printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$d/host_key.pub")" >"$d/known_hosts"
    cat >"$d/sshd_config" <<CONF
ListenAddress 127.0.0.1:$port
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
AllowUsers $user
PidFile none
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding local
X11Forwarding no
PermitTTY no
LogLevel INFO
CONF
    # sshd insists on its privilege-separation directory (normally made by the ssh service unit).
    [ -d /run/sshd ] || { mkdir -p /run/sshd && chmod 755 /run/sshd; }
    start_bg "$d/sshd.log" /usr/sbin/sshd -D -e -f "$d/sshd_config"; SSHD_PID=$BG_PID
    if ! wait_listen 127.0.0.1 "$port" 5 "$SSHD_PID"; then
        SSH_ERROR="private sshd did not start: $(tail -1 "$d/sshd.log")"; return 1
    fi
    start_bg "$d/ssh.log" ssh -v -N -F /dev/null -p "$port" -i "$d/user_key" \
        -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$d/known_hosts" -o ExitOnForwardFailure=yes \
        -L "127.0.0.1:$fwd:$thost:$tport" "$user@127.0.0.1"
    SSH_PID=$BG_PID
}

# ssh_cipher DIR : the cipher the client negotiated, read from its log (after a connection), or "unknown".
ssh_cipher() {
    local cipher
    cipher=$(grep -o -m1 'kex: client->server cipher: [^ ]*' "$1/ssh.log" | awk '{print $4}')
    echo "${cipher:-unknown}"
}

# ssh_description DIR : the client version and the cipher it negotiated (after a connection).
ssh_description() {
    echo "$(ssh -V 2>&1 | cut -d, -f1), ssh -N -L to a private sshd, default ciphers; negotiated $(ssh_cipher "$1")"
}

# ssh_failure DIR : the most telling line of a failed ssh -L.
ssh_failure() {
    grep -m1 -iE 'denied|error|refused' "$1/ssh.log" || tail -1 "$1/ssh.log"
}
