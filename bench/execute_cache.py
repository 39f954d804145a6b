#!/usr/bin/env python3
"""Cold against warm dependency caches for `otk execute` (issue: plans and stacks).

For each round: a fresh cache directory (OTK_CACHE_DIR), then
  cold:  otk execute PLAN --sandbox standard --allow-host 127.0.0.1:PORT   (the install
         phase fetches from a package index served on loopback, through the egress proxy,
         and fills the cache's wheelhouse)
  warm:  otk execute PLAN --sandbox OFFLINE    (strict with install = "none": no network at
         all, installs from the cache)
and, as the baseline measured in the same run, the same two pip steps bare on the host
(python3 -m venv + pip wheel + pip install from the index, then pip install from the
wheelhouse alone). Prints the install phase's median time of each and the ratios.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

# The index port, for --allow-host: standard's install phase reaches it through the egress proxy.
PORT = [0]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def start_index():
    p = subprocess.Popen([sys.executable, os.path.join(REPO, "Tests/Fixtures/package_index.py")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p, int(p.stdout.readline())

def install_time(otk, plan, sandbox, out, cache):
    env = dict(os.environ, OTK_CACHE_DIR=cache)
    extra = ["--allow-host", f"127.0.0.1:{PORT[0]}"] if sandbox == "standard" else []
    r = subprocess.run([otk, "execute", plan, "--json", "--sandbox", sandbox, "--output", out] + extra,
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    doc = json.loads(r.stdout or "{}")
    if r.returncode != 0:
        sys.exit(f"otk execute failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return sum(p.get("duration") or 0 for p in doc["phases"] if p["name"] == "install")

def bare_times(port, scratch):
    venv = os.path.join(scratch, "venv")
    wheels = os.path.join(scratch, "wheels")
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = [os.path.join(venv, "bin", "python3"), "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["wheel", "--wheel-dir", wheels, "--index-url", f"http://127.0.0.1:{port}/simple", "greetlib==0.1"], check=True)
    subprocess.run(pip + ["install", "--no-index", "--find-links", wheels, "greetlib==0.1"], check=True)
    cold = time.monotonic() - t0
    shutil.rmtree(venv)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run(pip + ["install", "--no-index", "--find-links", wheels, "greetlib==0.1"], check=True)
    return cold, time.monotonic() - t0

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--otk", default=os.path.join(REPO, ".build/release/otk"))
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not os.access(a.otk, os.X_OK):
        print(f"no otk at {a.otk}: build it with `swift build -c release --static-swift-stdlib`, or pass --otk", file=sys.stderr)
        return 2
    index, port = start_index()
    PORT[0] = port
    scratch = tempfile.mkdtemp(prefix="otk-bench-cache-")
    os.chmod(scratch, 0o755)
    try:
        template = open(os.path.join(REPO, "Tests/Fixtures/plans/python-greet.json")).read()
        plan = os.path.join(scratch, "plan.json")
        open(plan, "w").write(template.replace("127.0.0.1:PORT", f"127.0.0.1:{port}"))
        offline = os.path.join(scratch, "offline.toml")
        open(offline, "w").write(f'schema = 1\nextends = "{REPO}/profiles/strict.toml"\n[network]\ninstall = "none"\n')
        results = {"otk cold": [], "otk warm": [], "bare cold": [], "bare warm": []}
        for i in range(a.rounds):
            cache = os.path.join(scratch, f"cache-{i}")
            results["otk cold"].append(install_time(a.otk, plan, "standard", os.path.join(scratch, f"cold-{i}"), cache))
            results["otk warm"].append(install_time(a.otk, plan, offline, os.path.join(scratch, f"warm-{i}"), cache))
            bc, bw = bare_times(port, os.path.join(scratch, f"bare-{i}"))
            results["bare cold"].append(bc)
            results["bare warm"].append(bw)
        med = {k: statistics.median(v) for k, v in results.items()}
        print(f"install phase, median of {a.rounds} rounds (python venv + pip, one wheel from a loopback index)")
        for k in results:
            print(f"  {k:10s} {med[k]:7.2f} s   {' '.join(f'{x:.2f}' for x in results[k])}")
        print(f"  otk warm / otk cold   x{med['otk warm'] / med['otk cold']:.2f}")
        print(f"  otk cold / bare cold  x{med['otk cold'] / med['bare cold']:.2f}")
        print(f"  otk warm / bare warm  x{med['otk warm'] / med['bare warm']:.2f}")
    finally:
        index.stdin.close()
        index.wait()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
