#!/usr/bin/env bash
# Seeded kill -9 of real node processes during `paychan channel pay`, then restart, settle and
# check that no money was lost, no seq signed twice and no channel left stuck.
#
#   scripts/chaos.sh [--runs N] [--seed S] [--only I] [--count C] [--keep]
#
# Run i (0-based) kills, in turn, the payee, the payer, the sequencer and the witness (role
# i mod 4) of a fresh 4-node testnet (node-0 sequencer, node-1 payer, node-2 payee, node-3 a
# witness that is neither party), at a seeded moment of a pay job of C payments of 1 on one
# channel (node-1 to node-2), keeps it down for a seeded while, and starts it again on its
# data. The pay job finishes, or fails and a resume job of 1,000 payments is made; then the
# payer closes cooperatively (force-closes only if cooperation fails) and the run checks:
#   lost          what the payer saw acknowledged (max over its `channel list`: sent - unacked,
#                 polled every 50 ms, and every successful pay call) not in the payee's ledger
#                 payout, or the payee's own shortfall (payout below what it acked), or payouts
#                 that do not sum to the deposit;
#   double_signed seqs of one channel direction seen signed with two contents: a reestablish
#                 report that is not the payer's proof at that seq (in any node's log); proofs
#                 refused as not linking to the payee's newest (a gap or a second content: the
#                 log does not tell) are printed per run as `unlinked` and keep the run's dir;
#   stuck         the channel not closed with its payout on the ledger within 120 s of the close.
# Run i uses seed S + i, so `--seed S --only I` replays run I of a failing batch. A run's testnet
# (target/chaos/run-I) is deleted when the run is clean and kept otherwise (or with --keep).
# The last stdout line is
#   {"runs":N,"acked":A,"settled":S,"lost":L,"double_signed":D,"stuck":K}
# (A and S summed over the runs). It exits 1 if L, D or K is not 0.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p paychan
exec python3 - "$@" <<'PY'
import argparse, json, os, random, re, signal, subprocess, sys, threading, time
import urllib.request

BIN = os.path.abspath("target/release/paychan")
BASE = os.path.abspath("target/chaos")
ROLES = ["payee", "payer", "sequencer", "witness"]
NODE_OF = {"sequencer": 0, "payer": 1, "payee": 2, "witness": 3}
DEPOSIT = 100_000_000
RESUME_COUNT = 1_000
CLOSE_BOUND_S = 120.0
LOG_ENV = dict(os.environ, RUST_LOG=os.environ.get("CHAOS_RUST_LOG", "info,paychan_client=debug"))

ap = argparse.ArgumentParser(prog="scripts/chaos.sh")
ap.add_argument("--runs", type=int, default=4)
ap.add_argument("--seed", type=int, default=None)
ap.add_argument("--only", type=int, default=None, help="run only this run index")
ap.add_argument("--count", type=int, default=150_000, help="payments in the pay job")
ap.add_argument("--keep", action="store_true", help="keep every run's testnet")
args = ap.parse_args()
if args.runs < 1 or args.count < 1:
    sys.exit("--runs and --count must be positive")
seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
print(f"chaos: seed {seed}, {args.runs} runs, {args.count} payments per pay job", flush=True)


def cli(*argv, timeout=60.0):
    """Runs the CLI with --json; returns (ok, parsed JSON or error text)."""
    try:
        p = subprocess.run([BIN, *argv, "--json"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s"
    if p.returncode != 0:
        return False, (p.stderr.strip() or p.stdout.strip())[-300:]
    try:
        return True, json.loads(p.stdout)
    except ValueError:
        return True, p.stdout


class Api:
    """The control API of one node, re-reading its address (a restarted node gets a new port)."""

    def __init__(self, node_dir):
        self.dir = node_dir

    def get(self, path, timeout=2.0):
        with open(os.path.join(self.dir, "api.addr")) as f:
            addr = f.read().strip()
        with open(os.path.join(self.dir, "api.token")) as f:
            token = f.read().strip()
        req = urllib.request.Request(f"http://{addr}/v1/{path}", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)

    def channel(self, cid):
        try:
            for c in self.get("channels"):
                if c.get("id") == cid:
                    return c
        except Exception:
            return None
        return None


def pid_of(node_dir):
    try:
        with open(os.path.join(node_dir, "node.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(pred, bound_s, step_s=0.05):
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step_s)
    return pred()


def start_node(node_dir):
    for name in ("api.addr", "p2p.addr", "public.addr"):
        try:
            os.remove(os.path.join(node_dir, name))
        except FileNotFoundError:
            pass
    log = open(os.path.join(node_dir, "node.log"), "ab")
    subprocess.Popen([BIN, "run", "--data-dir", node_dir], stdin=subprocess.DEVNULL, stdout=log,
                     stderr=log, env=LOG_ENV, start_new_session=True)
    log.close()
    return wait_for(lambda: os.path.exists(os.path.join(node_dir, "api.addr")), 30.0)


# The payer's proof at a seq differs from the one the payee holds at that seq: two contents
# signed for one seq.
DOUBLE_SIGNED = re.compile(r"reported proof (\d+) is not the holder's proof at that seq")
# A proof refused because it does not link to the payee's newest: a gap (earlier proofs never
# arrived) or another content for a seq; the log does not say which, so it is counted apart.
UNLINKED = re.compile(r"proof (\d+) does not link to the previous proof")


def log_seqs(tn, pattern):
    seqs = set()
    for i in range(4):
        try:
            with open(os.path.join(tn, f"node-{i}", "node.log"), errors="replace") as f:
                for line in f:
                    for m in pattern.finditer(line):
                        seqs.add(int(m.group(1)))
        except OSError:
            pass
    return seqs


def one_run(i):
    rng = random.Random(seed + i)
    role = ROLES[i % 4]
    victim = NODE_OF[role]
    kill_after = rng.uniform(0.3, 2.8)
    down_for = rng.uniform(0.2, 2.0)
    tn = os.path.join(BASE, f"run-{i}")
    node = [os.path.join(tn, f"node-{k}") for k in range(4)]
    res = {"i": i, "role": role, "acked": 0, "settled": 0, "lost": 0, "double_signed": 0, "stuck": 0,
           "notes": []}
    subprocess.run([BIN, "testnet", "down", "--dir", tn], capture_output=True)
    subprocess.run(["rm", "-rf", tn], check=True)
    os.makedirs(BASE, exist_ok=True)
    p = subprocess.run([BIN, "testnet", "up", "--nodes", "4", "--dir", tn, "--json"], capture_output=True,
                       text=True, env=LOG_ENV, timeout=120)
    if p.returncode != 0:
        res["stuck"] = 1
        res["notes"].append(f"testnet up failed: {p.stderr.strip()[-200:]}")
        return res, tn
    status = json.loads(p.stdout)
    payee_peer = status[2]["peer_id"]
    payer, payee = Api(node[1]), Api(node[2])
    ok, v = cli("channel", "open", "--data-dir", node[1], "--peer", payee_peer, "--deposit", str(DEPOSIT))
    if not ok:
        res["stuck"] = 1
        res["notes"].append(f"open failed: {v}")
        return res, tn
    cid = v["channel_id"]
    # Both parties: a payee that has not applied the open's block yet refuses the first bursts
    # as busy and the payer does not resend them (a known defect this script is not about).
    if not wait_for(lambda: all((api.channel(cid) or {}).get("status") == "open" for api in (payer, payee)),
                    30.0):
        res["stuck"] = 1
        res["notes"].append("the open never reached the ledger at both parties")
        return res, tn

    # The payer's view, sampled: the most it ever saw acknowledged.
    seen = {"acked": 0}
    stop = threading.Event()

    def sample():
        c = payer.channel(cid)
        if c is not None and c.get("holder_is_a"):
            seen["acked"] = max(seen["acked"], int(c["sent"]) - int(c["unacked"]))

    def sampler():
        while not stop.is_set():
            sample()
            time.sleep(0.05)

    ts = threading.Thread(target=sampler, daemon=True)
    ts.start()
    pay = {}

    def pay_job():
        pay["result"] = cli("channel", "pay", cid, "--amount", "1", "--count", str(args.count),
                            "--data-dir", node[1], timeout=60)

    tp = threading.Thread(target=pay_job, daemon=True)
    t0 = time.monotonic()
    tp.start()
    time.sleep(kill_after)
    pid = pid_of(node[victim])
    in_flight = tp.is_alive()
    if pid is None or not alive(pid):
        res["notes"].append(f"node-{victim} was not running at the kill")
    else:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), 10.0)
    time.sleep(down_for)
    if not start_node(node[victim]):
        res["notes"].append(f"node-{victim} did not restart")
    tp.join(90)
    paid_ok = bool(pay.get("result") and pay["result"][0])
    credited = args.count if paid_ok else 0
    resumed = None
    if not paid_ok:
        # Resume: a fresh job once the channel works again (reestablished after the restart).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ok, v = cli("channel", "pay", cid, "--amount", "1", "--count", str(RESUME_COUNT),
                        "--data-dir", node[1], timeout=60)
            if ok:
                resumed = True
                break
            resumed = v
            time.sleep(0.5)
        if resumed is not True:
            res["notes"].append(f"resume pay never succeeded: {resumed}")
    sample()
    stop.set()
    ts.join(5)
    final = payer.channel(cid) or {}
    acked = seen["acked"]
    if paid_ok:
        acked = max(acked, credited)
    res["acked"] = acked

    # Settle: cooperative close by the payer, force only if cooperation keeps failing.
    tc = time.monotonic()
    closed, how, err = False, "coop", None
    while time.monotonic() - tc < CLOSE_BOUND_S:
        force = time.monotonic() - tc > 60
        how = "force" if force else "coop"
        ok, v = cli("channel", "close", cid, "--data-dir", node[1], *(["--force"] if force else []),
                    timeout=max(5.0, CLOSE_BOUND_S - (time.monotonic() - tc)))
        if ok:
            closed = True
            break
        err = v
        time.sleep(1)
    a = wait_for(lambda: (lambda c: c if c and c.get("payout") is not None else None)(payer.channel(cid)),
                 max(1.0, CLOSE_BOUND_S - (time.monotonic() - tc)))
    b = wait_for(lambda: (lambda c: c if c and c.get("payout") is not None else None)(payee.channel(cid)),
                 max(1.0, CLOSE_BOUND_S - (time.monotonic() - tc)))
    close_s = time.monotonic() - tc
    if not (closed and a and b and a.get("status") == "closed" and b.get("status") == "closed"):
        res["stuck"] = 1
        res["notes"].append(f"not closed and paid out within {CLOSE_BOUND_S:.0f} s (close: {err}; "
                            f"payer {(a or payer.channel(cid) or {}).get('status')}, "
                            f"payee {(b or payee.channel(cid) or {}).get('status')})")
    else:
        settled = int(b["payout"])
        res["settled"] = settled
        lost = max(0, acked - settled, int(b.get("shortfall") or 0))
        if int(a["payout"]) + settled != DEPOSIT:
            res["notes"].append(f"payouts {a['payout']} + {settled} != deposit {DEPOSIT}")
            lost = max(lost, 1)
        res["lost"] = lost
        if lost:
            res["notes"].append(f"payer saw {acked} acked, payee paid {settled}, payee shortfall "
                                f"{b.get('shortfall')}, payee expected {b.get('expected')}")
    seqs = log_seqs(tn, DOUBLE_SIGNED)
    res["double_signed"] = len(seqs)
    if seqs:
        res["notes"].append(f"seqs signed twice: {sorted(seqs)[:10]}")
    unlinked = log_seqs(tn, UNLINKED)
    res["unlinked"] = len(unlinked)
    if unlinked:
        res["notes"].append(f"{len(unlinked)} proofs refused as not linking to the payee's newest "
                            f"(a gap or a second content), first seqs {sorted(unlinked)[:5]}")
    res["line"] = (f"kill node-{victim} at {kill_after:.2f} s ({'during' if in_flight else 'after'} the pay), "
                   f"down {down_for:.2f} s; pay {'ok' if paid_ok else 'failed, resume ' + ('ok' if resumed is True else 'failed')}; "
                   f"close {how} {close_s:.1f} s")
    return res, tn


totals = {"runs": 0, "acked": 0, "settled": 0, "lost": 0, "double_signed": 0, "stuck": 0}
indices = [args.only] if args.only is not None else range(args.runs)
for i in indices:
    try:
        res, tn = one_run(i)
    except Exception as e:  # a broken run is reported as stuck, never hidden
        res, tn = {"i": i, "role": ROLES[i % 4], "acked": 0, "settled": 0, "lost": 0, "double_signed": 0,
                   "stuck": 1, "notes": [f"driver error: {e!r}"]}, os.path.join(BASE, f"run-{i}")
    subprocess.run([BIN, "testnet", "down", "--dir", tn], capture_output=True)
    bad = res["lost"] or res["double_signed"] or res["stuck"] or res.get("unlinked")
    if not bad and not args.keep:
        subprocess.run(["rm", "-rf", tn])
    totals["runs"] += 1
    for k in ("acked", "settled", "lost", "double_signed", "stuck"):
        totals[k] += res[k]
    print(f"run {i} (seed {seed + i}) {res['role']:9}: {res.get('line', '')}; acked {res['acked']} "
          f"settled {res['settled']} lost {res['lost']} double_signed {res['double_signed']} "
          f"stuck {res['stuck']}" + (f" unlinked {res['unlinked']}" if res.get("unlinked") else "") + "".join(f"\n    {n}" for n in res["notes"])
          + (f"\n    kept {tn}; replay: scripts/chaos.sh --seed {seed} --only {i}" if bad else ""), flush=True)
print(json.dumps(totals, separators=(",", ":")), flush=True)
sys.exit(1 if totals["lost"] or totals["double_signed"] or totals["stuck"] else 0)
PY
