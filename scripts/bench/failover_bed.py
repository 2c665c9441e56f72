#!/usr/bin/env python3
"""Helpers for the Patroni + etcd failover bed (scripts/bench/failover-bed.sh): rendering the
examples/patroni templates, the writer, the promotion watcher, cluster and etcd queries, the
per-round report and the summary. Standard library plus psycopg2 (python3-psycopg2, a dependency of
Debian's patroni). Every loop here ends at a deadline.

  render TEMPLATE OUT KEY=VALUE...     plain string replacement of {KEY}; fails on a {placeholder} left over
  mesh-json OUT ...                    the bed's mesh.json (see mesh_json)
  writer DSN OUT STOP MAX_SECONDS      numbered INSERTs every 20 ms, one line per outcome
  watch NODE SOCKET_DIR API OUT STOP MAX_SECONDS   when this node's PostgreSQL leaves recovery, when Patroni holds the lock
  wait-healthy API SECONDS             until /cluster shows a running leader, a sync standby, two streaming replicas; prints the leader
  cluster-roles API                    prints Patroni's leader and sync standby (`-` for none)
  etcd-leader URL                      prints yes when the member at URL is etcd's Raft leader
  etcd-place-leader URL NAME           makes member NAME etcd's Raft leader
  round-report ...                     one JSON line per kill round (see round_report)
  switchover-report ...                one JSON line per switchover round (see switchover_report)
  summary RESULTS.jsonl LEG...         the table of medians / min / max per leg
"""

import json
import os
import pathlib
import re
import select
import statistics
import sys
import time
import urllib.request


def render(template, out, pairs):
    text = open(template).read()
    for pair in pairs:
        key, _, value = pair.partition("=")
        text = text.replace("{" + key + "}", value)
    # Comments may name placeholders in prose; only non-comment text must be fully rendered.
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    left = sorted(set(re.findall(r"\{[a-z_]+\}", code)))
    if left:
        sys.exit(f"render {template}: no value for {', '.join(left)}")
    with open(out, "w") as f:
        f.write(text)


def mesh_json(out, state, subnet, port, probe_interval, db_nodes, app_nodes, same_address_base):
    """The bed's mesh.json: every db node serves etcd-peer, etcd-client, patroni-api and postgres at
    its own loopback address (same_address), app nodes get patroni-api and postgres, and the pg
    balancer runs on the app nodes."""
    nodes = db_nodes + app_nodes
    config = {
        "mesh": "failover",
        "tls": {"ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem"},
        "tunnel": {"ping_interval": "1s", "dead_after": 3, "backoff_max": "2s"},
        "nodes": {
            n: {"address": f"{subnet}.{i + 1}:{port}", "control": f"{state}/{n}/meshd.sock"} for i, n in enumerate(nodes)
        },
        "services": {},
        "balancers": {
            "pg": {"service": "postgres", "on": {a: {"rw": "127.0.0.1:6432", "ro": "127.0.0.1:6433"} for a in app_nodes}}
        },
    }
    def on(service_port):
        return {n: f"{same_address_base}.{i + 1}:{service_port}" for i, n in enumerate(db_nodes)}
    services = config["services"]
    services["etcd-peer"] = {"on": on(2380), "allow": db_nodes, "same_address": True}
    services["etcd-client"] = {"on": on(2379), "allow": db_nodes, "same_address": True}
    services["patroni-api"] = {"on": on(8008), "allow": nodes, "same_address": True}
    services["postgres"] = {
        "on": on(5432), "allow": nodes, "same_address": True,
        "postgres": {"monitor_user": "meshmon", "database": "postgres", "password_file": f"{state}/meshmon.password",
                     "probe_interval": probe_interval, "patroni": "patroni-api"},
    }
    with open(out, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def wait_fd(fd, want_write, deadline):
    left = deadline - time.time()
    if left <= 0:
        raise TimeoutError("no answer in time")
    r, w, _ = select.select([] if want_write else [fd], [fd] if want_write else [], [], left)
    if not r and not w:
        raise TimeoutError("no answer in time")


def wait_async(conn, deadline):
    """Drives an asynchronous psycopg2 connection to completion or the deadline. Asynchronous, so a
    hung server is given up by closing the socket, never by a cancel: a cancelled wait for a
    synchronous standby would still commit and answer success (PostgreSQL's warning)."""
    import psycopg2.extensions as ext
    while True:
        state = conn.poll()
        if state == ext.POLL_OK:
            return
        if state == ext.POLL_READ:
            wait_fd(conn.fileno(), False, deadline)
        elif state == ext.POLL_WRITE:
            wait_fd(conn.fileno(), True, deadline)
        else:
            raise RuntimeError(f"poll state {state}")


def writer(dsn, out, stop, max_seconds, interval=0.02, timeout=3.0):
    """Inserts ids 1, 2, 3, ... every `interval`, one row per statement (autocommit), reconnecting
    after any error. Writes `ack ID TIME NODE_ADDRESS` for every acknowledged id and `err ID TIME
    MESSAGE` for every failure; a failed id is never retried (its fate is unknown)."""
    import psycopg2
    end = time.time() + max_seconds
    conn, next_id = None, 0
    with open(out, "w", buffering=1) as f:
        slot = time.time()
        while time.time() < end and not os.path.exists(stop):
            slot += interval
            try:
                if conn is None:
                    conn = psycopg2.connect(dsn, async_=1)
                    wait_async(conn, time.time() + timeout)
                next_id += 1
                cur = conn.cursor()
                cur.execute("INSERT INTO failover_bench (id) VALUES (%s) RETURNING host(inet_server_addr())", (next_id,))
                wait_async(conn, time.time() + timeout)
                addr = cur.fetchone()[0]
                f.write(f"ack {next_id} {time.time():.6f} {addr}\n")
            except Exception as e:  # every failure: note it, drop the connection, go on
                message = " ".join(str(e).split())[:200] or type(e).__name__
                f.write(f"err {next_id} {time.time():.6f} {message}\n")
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                conn = None
            pause = slot - time.time()
            if pause > 0:
                time.sleep(pause)
            else:
                slot = time.time()


def watch(node, socket_dir, api, out, stop, max_seconds):
    """Polls this node's PostgreSQL (Unix socket) and Patroni (/primary) every 100 ms and writes a
    line on each change: `recovery TIME true|false|down`, `primary TIME 200|503|down` and, while it is
    a primary, `sync TIME named|none|down` (whether synchronous_standby_names names a standby)."""
    import psycopg2
    end = time.time() + max_seconds
    last = {}
    conn = None
    with open(out, "w", buffering=1) as f:
        while time.time() < end and not os.path.exists(stop):
            try:
                if conn is None:
                    conn = psycopg2.connect(host=socket_dir, user="postgres", dbname="postgres", connect_timeout=1)
                    conn.autocommit = True
                cur = conn.cursor()
                cur.execute("SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names')")
                in_recovery, names = cur.fetchone()
                recovery = "true" if in_recovery else "false"
                sync = "none" if in_recovery or not names.strip() else "named"
            except Exception:
                recovery = sync = "down"
                try:
                    conn and conn.close()
                except Exception:
                    pass
                conn = None
            try:
                with urllib.request.urlopen(api + "/primary", timeout=0.5) as r:
                    primary = str(r.status)
            except urllib.error.HTTPError as e:
                primary = str(e.code)
            except Exception:
                primary = "down"
            now = time.time()
            for key, value in (("recovery", recovery), ("primary", primary), ("sync", sync)):
                if last.get(key) != value:
                    f.write(f"{key} {now:.6f} {value}\n")
                    last[key] = value
            time.sleep(0.1)


def get_json(url, timeout=1.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def wait_healthy(api, seconds):
    """Waits for a running leader, a sync standby and every other member streaming with no lag;
    prints the leader's name. Exit 1 with the last /cluster seen when the deadline passes."""
    end, last = time.time() + seconds, None
    while time.time() < end:
        try:
            members = get_json(api + "/cluster")["members"]
            last = members
            leaders = [m for m in members if m.get("role") == "leader" and m.get("state") == "running"]
            sync = [m for m in members if m.get("role") == "sync_standby"]
            replicas = [m for m in members if m.get("role") in ("replica", "sync_standby")
                        and m.get("state") in ("running", "streaming") and m.get("lag", 1) in (0, "0")]
            if len(members) == 3 and len(leaders) == 1 and len(sync) == 1 and len(replicas) == 2:
                print(leaders[0]["name"])
                return
        except Exception as e:
            last = repr(e)
        time.sleep(0.3)
    sys.exit(f"cluster not healthy within {seconds} s: {json.dumps(last)}")


def cluster_roles(api):
    members = get_json(api + "/cluster", timeout=2.0)["members"]
    def name(role):
        return next((m["name"] for m in members if m.get("role") == role), "-")
    print(name("leader"), name("sync_standby"))


def etcd_post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=2) as r:
        return json.load(r)


def etcd_leader(url):
    status = etcd_post(url + "/v3/maintenance/status", {})
    print("yes" if status.get("leader") == status.get("header", {}).get("member_id") else "no")


def etcd_place_leader(url, name, seconds=10):
    """Makes member `name` etcd's Raft leader (MoveLeader, sent to the current leader), so every
    leg kills a node that leads etcd in the same rounds: whether it does moves the failover by
    3-4 s (etcd renews every lease on a new leader) and would otherwise be chance."""
    members = etcd_post(url + "/v3/cluster/member/list", {})["members"]
    target = next(m["ID"] for m in members if m.get("name") == name)
    deadline = time.time() + seconds
    while time.time() < deadline:
        leader = etcd_post(url + "/v3/maintenance/status", {}).get("leader")
        if leader == target:
            print(f"etcd leader is {name}")
            return
        current = next((m for m in members if m["ID"] == leader), None)
        if current:
            try:
                etcd_post(current["clientURLs"][0] + "/v3/maintenance/transfer-leadership", {"targetID": target})
            except Exception as e:  # an election under way: ask again
                print(f"move-leader: {e}", file=sys.stderr)
        time.sleep(0.5)
    sys.exit(f"etcd leadership did not move to {name} within {seconds} s")


def read_lines(path):
    try:
        with open(path) as f:
            return [line.strip().split(None, 3) for line in f if line.strip()]
    except OSError:
        return []


def first_after(lines, key, value, t):
    for fields in lines:
        if fields[0] == key and float(fields[1]) >= t and fields[2] == value:
            return float(fields[1])
    return None


def writes_by_node(acks):
    """Acknowledgements per node, and the nodes in the order they took writes (one entry per run of
    consecutive acknowledgements by the same node)."""
    per_node, sequence = {}, []
    for _, _, node in acks:
        per_node[node] = per_node.get(node, 0) + 1
        if not sequence or sequence[-1] != node:
            sequence.append(node)
    return per_node, sequence


def round_report(leg, round_no, killed, etcd_leader_killed, kill_time, kill_done, acks_file, rows_file, address_map, watch_files):
    """One round's measures: kill -> Patroni lock, kill -> promotion (a survivor's PostgreSQL leaves
    recovery), kill -> first acknowledged write after the kill, the balancer's part (first ack after
    promotion), acknowledged ids missing on the new primary, and acks per node."""
    names = dict(pair.split("=") for pair in address_map.split(","))
    acks, errors = [], 0
    for fields in read_lines(acks_file):
        if fields[0] == "ack":
            acks.append((int(fields[1]), float(fields[2]), names.get(fields[3], fields[3])))
        else:
            errors += 1
    rows = set()
    with open(rows_file) as f:
        rows = {int(line) for line in f if line.strip()}
    lock = promoted = None
    new_primary = sync_named = None
    for path in watch_files:
        node = os.path.basename(path).split(".")[0]
        lines = read_lines(path)
        t_lock = first_after(lines, "primary", "200", kill_time)
        t_prom = first_after(lines, "recovery", "false", kill_time)
        if t_prom is not None and (promoted is None or t_prom < promoted):
            promoted, new_primary = t_prom, node
            sync_named = first_after(lines, "sync", "named", t_prom)
        if t_lock is not None and (lock is None or t_lock < lock):
            lock = t_lock
    before = [a for a in acks if a[1] < kill_time]
    after = [a for a in acks if a[1] >= kill_done]
    first_ack = after[0][1] if after else None
    lost = sorted(i for i, _, _ in acks if i not in rows)
    per_node, sequence = writes_by_node(acks)
    def since(t):
        return None if t is None else round(t - kill_time, 3)
    result = {
        "kind": "kill", "leg": leg, "round": round_no, "killed": killed, "etcd_leader_killed": etcd_leader_killed == "yes",
        "kill_to_lock": since(lock), "kill_to_promotion": since(promoted), "new_primary": new_primary,
        "writes_refused": since(first_ack),
        "after_promotion": None if first_ack is None or promoted is None else round(first_ack - promoted, 3),
        # How long the new primary acknowledged commits with no synchronous standby named (non-strict mode).
        "unprotected_after_promotion": None if sync_named is None or promoted is None else round(sync_named - promoted, 3),
        "last_ack_before_kill": None if not before else round(kill_time - before[-1][1], 3),
        "kill_took": round(kill_done - kill_time, 3),
        "acked": len(acks), "errors": errors, "acked_lost": len(lost), "lost_ids": lost[:20],
        "acks_per_node": per_node, "writer_nodes_in_order": sequence,
        "nodes_after_kill": sorted({node for _, _, node in after}),
    }
    print(json.dumps(result))


def switchover_report(leg, round_no, leader, candidate, leader_after, status, switch_time, switch_done, acks_file,
                      rows_file, address_map, candidate_watch):
    """One planned switchover's measures, in seconds from the start of `patronictl switchover`:
    writes refused = the longest gap between consecutive acknowledged writes (the first counted from
    the start) until 2 s after the first write the candidate acknowledged; the candidate's promotion
    (its PostgreSQL out of recovery); acknowledged ids missing at the end; the nodes that took
    writes, in order (must be the old leader, then the candidate)."""
    names = dict(pair.split("=") for pair in address_map.split(","))
    acks, errs = [], []
    for fields in read_lines(acks_file):
        if fields[0] == "ack":
            acks.append((int(fields[1]), float(fields[2]), names.get(fields[3], fields[3])))
        else:
            errs.append(float(fields[2]))
    with open(rows_file) as f:
        rows = {int(line) for line in f if line.strip()}
    first_new = next((t for _, t, node in acks if t >= switch_time and node == candidate), None)
    refused = None
    if first_new is not None:
        last, refused = switch_time, 0.0
        for _, t, _ in acks:
            if switch_time < t <= first_new + 2.0:
                refused = max(refused, t - last)
                last = t
    end = first_new + 2.0 if first_new is not None else float("inf")
    last_old = max((t for _, t, node in acks if node == leader and t >= switch_time), default=None)
    promoted = first_after(read_lines(candidate_watch), "recovery", "false", switch_time)
    lost = sorted(i for i, _, _ in acks if i not in rows)
    per_node, sequence = writes_by_node(acks)
    def since(t):
        return None if t is None else round(t - switch_time, 3)
    print(json.dumps({
        "kind": "switchover", "leg": leg, "round": round_no, "leader": leader, "candidate": candidate,
        "leader_after": leader_after, "moved": leader_after == candidate, "patronictl_status": int(status),
        "patronictl_took": round(switch_done - switch_time, 3),
        "writes_refused": None if refused is None else round(refused, 3),
        "to_promotion": since(promoted), "first_write_on_new": since(first_new), "last_write_on_old": since(last_old),
        "errors_in_window": sum(1 for t in errs if switch_time <= t <= end),
        "acked": len(acks), "errors": len(errs), "acked_lost": len(lost), "lost_ids": lost[:20],
        "acks_per_node": per_node, "writer_nodes_in_order": sequence,
        "nodes_ok": sequence == [leader, candidate],
    }))


def fmt(values, digits=1):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / {max(values):.{digits}f}"


def brief(line):
    r = json.loads(line)
    def s(v):
        return "never" if v is None else f"{v:.1f} s"
    if r.get("kind") == "switchover":
        moved = "leader moved" if r["moved"] else f"leader did NOT move: {r['leader_after']}"
        refused = "writes never reached it" if r["writes_refused"] is None else f"writes refused {r['writes_refused']:.2f} s"
        print(f"switchover {r['leader']} -> {r['candidate']} ({moved}): {refused} (longest gap), "
              f"{r['candidate']} promoted after {s(r['to_promotion'])}, first write on it after {s(r['first_write_on_new'])}, "
              f"{r['errors_in_window']} write errors, {r['acked_lost']} acknowledged commits lost of {r['acked']}, "
              f"nodes that took writes: {' -> '.join(r['writer_nodes_in_order']) or 'none'}")
        return
    print(f"killed {r['killed']}{' (etcd leader)' if r['etcd_leader_killed'] else ''}: writes refused {s(r['writes_refused'])}, "
          f"promotion after {s(r['kill_to_promotion'])} ({r['new_primary']}), first write {s(r['after_promotion'])} after it, "
          f"{r['acked_lost']} acknowledged commits lost of {r['acked']}, nodes after the kill: {','.join(r['nodes_after_kill']) or 'none'}")


def summary(results, legs):
    done = [r for r in (json.loads(line) for line in open(results) if line.strip()) if "failed" not in r]
    rows = [r for r in done if r.get("kind", "kill") == "kill"]
    switches = {l: [r for r in done if r.get("kind") == "switchover" and r["leg"] == l] for l in legs}
    labels = {"haproxy": "Patroni + etcd + HAProxy (anchor)", "mesh": "Patroni + etcd through tunnelmesh, `rw` balancer"}
    out = ["| measure (min / median / max, seconds) | " + " | ".join(labels.get(l, l) for l in legs) + " |",
           "| --- |" + " --- |" * len(legs)]
    by_leg = {l: [r for r in rows if r["leg"] == l] for l in legs}
    def line(title, cell):
        out.append(f"| {title} | " + " | ".join(cell(by_leg[l]) for l in legs) + " |")
    line("runs (the primary's node killed)", lambda rs: str(len(rs)))
    line("kill → first acknowledged write (writes refused)", lambda rs: fmt([r["writes_refused"] for r in rs]))
    line("… when the killed node was not etcd's leader", lambda rs: fmt([r["writes_refused"] for r in rs if not r["etcd_leader_killed"]]))
    line("… when it was also etcd's leader (etcd renews every lease on a new Raft leader)",
         lambda rs: fmt([r["writes_refused"] for r in rs if r["etcd_leader_killed"]]))
    line("kill → Patroni lock taken (`/primary` 200)", lambda rs: fmt([r["kill_to_lock"] for r in rs]))
    line("kill → promotion (PostgreSQL out of recovery)", lambda rs: fmt([r["kill_to_promotion"] for r in rs]))
    line("promotion → first acknowledged write (the balancer's / HAProxy's part)", lambda rs: fmt([r["after_promotion"] for r in rs], 2))
    line("promotion → a synchronous standby named again (commits acknowledged by one node meanwhile)",
         lambda rs: fmt([r.get("unprotected_after_promotion") for r in rs]))
    line("acknowledged commits lost (total)", lambda rs: str(sum(r["acked_lost"] for r in rs)))
    line("runs where writes never resumed", lambda rs: str(sum(1 for r in rs if r["writes_refused"] is None)))
    line("nodes acknowledging writes after the kill (max)", lambda rs: str(max((len(r["nodes_after_kill"]) for r in rs), default=0)))
    line("writer's node changes (max; 1 = old primary, then new)", lambda rs: str(max((len(r["writer_nodes_in_order"]) - 1 for r in rs), default=0)))
    line("runs where the killed node was also etcd's leader", lambda rs: str(sum(1 for r in rs if r["etcd_leader_killed"])))
    def sline(title, cell):
        out.append(f"| {title} | " + " | ".join(cell(switches[l]) for l in legs) + " |")
    sline("planned switchovers (`patronictl switchover` to the sync standby)", lambda rs: str(len(rs)))
    sline("switchover: writes refused (longest gap between acknowledged writes, until 2 s after the first on the new leader)",
          lambda rs: fmt([r["writes_refused"] for r in rs], 2))
    sline("switchover → new leader promoted (PostgreSQL out of recovery)", lambda rs: fmt([r["to_promotion"] for r in rs]))
    sline("switchover → first write acknowledged by the new leader", lambda rs: fmt([r["first_write_on_new"] for r in rs]))
    sline("switchover: write errors (of one writer, every 20 ms)", lambda rs: fmt([r["errors_in_window"] for r in rs], 0))
    sline("switchover: acknowledged commits lost (total)", lambda rs: str(sum(r["acked_lost"] for r in rs)))
    sline("switchovers where the leader did not move or writes never reached it",
          lambda rs: str(sum(1 for r in rs if not r["moved"] or r["writes_refused"] is None)))
    sline("switchovers where writes did not go old leader, then new leader only", lambda rs: str(sum(1 for r in rs if not r["nodes_ok"])))
    print("\n".join(out))


def section(results, machine_path, write_path):
    """The failover section of BENCHMARKS.md: how it was measured, the table, every round."""
    from markdown_section import print_section
    machine = json.load(open(machine_path))
    legs = machine["legs"]
    rows = [json.loads(line) for line in open(results) if line.strip()]
    failed = [r for r in rows if "failed" in r]
    import io, contextlib
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        summary(results, legs)
    lines = [
        "## Automatic failover: writes refused when the primary's node dies, and in a planned switchover",
        "",
        f"`{machine['command']}`, {machine['date']}, on {machine['cores']} cores ({machine['cpu']}), {machine['os']}, "
        f"kernel {machine['kernel']}; load average {machine['load_start']} before, {machine['load_end']} after. "
        f"{machine['patroni']} (from PyPI, in a venv on Debian's Python: Debian 12's 3.0.2 can overwrite a new leader's "
        f"key after a partition heals, Patroni PR #2689), {machine['etcd']}, {machine['postgres']}, {machine['haproxy']}.",
        "",
        "Four network namespaces (db1 db2 db3 app1) on a bridge; each round builds the cluster from scratch with "
        "`examples/patroni` (ttl 20, loop_wait 5, retry_timeout 5, `synchronous_mode` on), waits for a leader, a sync "
        "standby and two streaming replicas, runs a writer on app1 that inserts a numbered row every 20 ms through "
        "127.0.0.1:6432 (reconnecting after any error, recording every acknowledged id and the server address that "
        "acknowledged it), then kills -9 every process in the leader's namespace (`ip netns pids`). "
        "**Anchor**: etcd, Patroni and PostgreSQL on the bed addresses, HAProxy on app1 checking Patroni's `/primary` "
        "every 1 s, `fall 3 rise 2`, `on-marked-down shutdown-sessions`. **tunnelmesh**: every service on its node's "
        "own loopback (127.0.1.N, `same_address` services etcd-peer, etcd-client, patroni-api, postgres), only meshd's "
        f"port reachable between nodes, the writer through meshd's `rw` balancer (`probe_interval` {machine['probe_interval']}). "
        "Legs take turns round by round. Odd rounds first make the Patroni leader's node etcd's Raft leader too, even rounds another node (`etcd-place-leader`, then 5.5 s for a Patroni loop), so both legs kill an etcd leader equally often.",
        "",
        "Writes refused = kill → the first acknowledged write after it. Promotion = the first survivor whose PostgreSQL "
        "answers `pg_is_in_recovery() = false` (polled every 100 ms); lock = its Patroni's `/primary` answering 200. "
        "The promotion is seen up to 0.1 s late (plus a query), so the balancer's part can show 0.0 or a little below. "
        "Commits lost = acknowledged ids missing from the new primary's table at the end of the round. "
        "Sync standby named = promotion → the new primary's `synchronous_standby_names` names a standby again "
        "(until then, in non-strict `synchronous_mode`, it acknowledges commits that only it holds).",
        "",
        "Planned switchover: a round of its own (cluster from scratch, the same writer, a random 0–5 s wait), then "
        "`patronictl switchover --leader L --candidate S --force` on L to the synchronous standby S (the only candidate "
        "`synchronous_mode` accepts), checking afterwards that Patroni's leader is S. Writes refused = the longest gap "
        "between consecutive acknowledged writes from the command's start (the first gap counted from it) until 2 s after "
        "the first write S acknowledged; the nodes that took writes must be L, then S.",
        "",
        table.getvalue().rstrip(),
        "",
    ]
    parts = {l: [r["after_promotion"] for r in rows if r.get("leg") == l and r.get("after_promotion") is not None] for l in legs}
    if all(parts.get(l) for l in ("haproxy", "mesh")):
        lines += [f"Everything before the promotion is Patroni and etcd, the same in both legs (which node dies, and whether it "
                  f"also led etcd, decides most of the spread). After it, the `rw` balancer took "
                  f"{statistics.median(parts['mesh']):.2f} s (median; at most {max(parts['mesh']):.2f} s) to route the first "
                  f"write, HAProxy {statistics.median(parts['haproxy']):.2f} s (at most {max(parts['haproxy']):.2f} s).", ""]
    if failed:
        lines += [f"Rounds whose bed did not come up (not in the table): {', '.join(r['leg'] + (' switchover ' if r.get('kind') == 'switchover' else ' ') + str(r['round']) for r in failed)}.", ""]
    def c(v):
        return "-" if v is None else f"{v:.2f}"
    kill_rows = [r for r in rows if r.get("kind", "kill") == "kill" and "failed" not in r]
    if kill_rows:
        lines += ["Every kill round (seconds after the kill):", "",
                  "| leg | round | killed | etcd leader | lock | promotion | first write | balancer part | sync standby named | acked | lost | acks per node |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in kill_rows:
        per_node = ", ".join(f"{k} {v}" for k, v in sorted(r["acks_per_node"].items()))
        lines.append(f"| {r['leg']} | {r['round']} | {r['killed']} | {'yes' if r['etcd_leader_killed'] else 'no'} | "
                     f"{c(r['kill_to_lock'])} | {c(r['kill_to_promotion'])} | {c(r['writes_refused'])} | "
                     f"{c(r['after_promotion'])} | {c(r.get('unprotected_after_promotion'))} | {r['acked']} | {r['acked_lost']} | {per_node} |")
    switch_rows = [r for r in rows if r.get("kind") == "switchover" and "failed" not in r]
    if switch_rows:
        lines += ([""] if kill_rows else []) + ["Every planned switchover (seconds after `patronictl switchover` started):", "",
                  "| leg | round | from → to | leader moved | promotion | first write on new leader | writes refused (longest gap) | "
                  "write errors | acked | lost | nodes that took writes |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in switch_rows:
            lines.append(f"| {r['leg']} | {r['round']} | {r['leader']} → {r['candidate']} | {'yes' if r['moved'] else 'no: ' + r['leader_after']} | "
                         f"{c(r['to_promotion'])} | {c(r['first_write_on_new'])} | {c(r['writes_refused'])} | {r['errors_in_window']} | "
                         f"{r['acked']} | {r['acked_lost']} | {' → '.join(r['writer_nodes_in_order'])} |")
    print_section("\n".join(lines) + "\n", "failover", pathlib.Path(write_path) if write_path else None)


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "render":
        render(args[0], args[1], args[2:])
    elif command == "mesh-json":
        out, state, subnet, port, probe, dbs, apps, base = args
        mesh_json(out, state, subnet, int(port), probe, dbs.split(","), apps.split(","), base)
    elif command == "writer":
        writer(args[0], args[1], args[2], float(args[3]))
    elif command == "watch":
        watch(args[0], args[1], args[2], args[3], args[4], float(args[5]))
    elif command == "wait-healthy":
        wait_healthy(args[0], float(args[1]))
    elif command == "cluster-roles":
        cluster_roles(args[0])
    elif command == "switchover-report":
        leg, round_no, leader, candidate, leader_after, status, switch_time, switch_done, acks, rows, address_map, watch_file = args
        switchover_report(leg, int(round_no), leader, candidate, leader_after, status, float(switch_time), float(switch_done),
                          acks, rows, address_map, watch_file)
    elif command == "etcd-leader":
        etcd_leader(args[0])
    elif command == "etcd-place-leader":
        etcd_place_leader(args[0], args[1])
    elif command == "round-report":
        leg, round_no, killed, etcd_killed, kill_time, kill_done, acks, rows, address_map = args[:9]
        round_report(leg, int(round_no), killed, etcd_killed, float(kill_time), float(kill_done), acks, rows,
                     address_map, args[9:])
    elif command == "brief":
        brief(args[0])
    elif command == "section":
        section(args[0], args[1], args[2] if len(args) > 2 else "")
    elif command == "summary":
        summary(args[0], args[1:])
    else:
        sys.exit(f"failover_bed.py: unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
