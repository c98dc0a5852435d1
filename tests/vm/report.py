#!/usr/bin/env python3
"""Results of the guest runs (tests/vm/).

report.py kernel DIR NAME KVER SECONDS GUEST_RC
    reads DIR/{mechanisms.txt,env.txt,status,<mode>.xml}, prints a summary,
    writes DIR/result.json, exits 1 unless every mode ran tests and none failed.
report.py summary OUT.md HOST_MECHANISMS DIR...
    the kernel support table of every DIR (and this host) as Markdown.
"""
import json
import os
import platform
import sys
import xml.etree.ElementTree as ET


def read_lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f if l.strip()]
    except OSError:
        return []


def mechanisms(path):
    found, auto = {}, None
    for line in read_lines(path):
        name, _, rest = line.partition(" ")
        if name == "auto":
            auto = rest
        else:
            found[name] = rest
    return found, auto


def gtest(path):
    """(run, passed, failed, skipped, seconds, failed test names) of a gtest XML file."""
    root = ET.parse(path).getroot()
    run = passed = failed = skipped = 0
    names = []
    for case in root.iter("testcase"):
        if case.get("status") == "notrun":
            continue
        run += 1
        name = f"{case.get('classname')}.{case.get('name')}"
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            failed += 1
            # The test and where it failed, so the CI log says what broke (the whole
            # message is in the guest's console log).
            where = (bad.get("message") or "").strip().splitlines()[:4]
            names.append(name + "".join("\n      " + l[:200] for l in where))
        elif case.get("result") == "skipped" or case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return run, passed, failed, skipped, float(root.get("time", 0)), names


def kernel(d, name, kver, seconds, guest_rc):
    found, auto = mechanisms(os.path.join(d, "mechanisms.txt"))
    env_bad = [l.split()[0] for l in read_lines(os.path.join(d, "env.txt")) if l.endswith(" FAIL")]
    modes, ok = {}, guest_rc == 0 and not env_bad
    for line in read_lines(os.path.join(d, "status")):
        mode, st, *rest = line.split()
        if st == "n/a":
            modes[mode] = {"status": "n/a"}
            continue
        xml = os.path.join(d, mode + ".xml")
        m = {"exit": int(st), "seconds": int(rest[0]) if rest else None}
        if os.path.exists(xml):
            run, passed, failed, skipped, _, names = gtest(xml)
            m.update(run=run, passed=passed, failed=failed, skipped=skipped, failures=names)
        else:
            m.update(run=0, passed=0, failed=0, skipped=0, failures=["(no results: exit %s)" % st])
        m["status"] = "pass" if m["exit"] == 0 and m["run"] > 0 and not m["failed"] else "FAIL"
        ok = ok and m["status"] == "pass"
        modes[mode] = m
    if not modes:
        ok = False
    about = read_lines(os.path.join(d, "about")) + ["", ""]
    res = {"kernel": name, "kver": kver, "arch": about[0] or "amd64", "auto_set": about[1],
           "mechanisms": found, "auto": auto, "env_failed": env_bad,
           "modes": modes, "seconds": int(float(seconds)), "guest_rc": guest_rc, "ok": ok}
    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"vm: {name} ({kver}): {'pass' if ok else 'FAIL'} in {res['seconds']} s; "
          f"auto picks {auto}; {mech_text(found)}")
    for mode, m in modes.items():
        if m["status"] == "n/a":
            print(f"vm:   {mode}: not available, not run")
            continue
        print(f"vm:   {mode}: {m['passed']}/{m['run']} passed, {m['failed']} failed, "
              f"{m['skipped']} skipped, {m['seconds']} s")
        for n in m["failures"]:
            print(f"vm:     FAILED {n}")
    if env_bad:
        print(f"vm:   guest environment missing: {', '.join(env_bad)}")
    if guest_rc not in (0, 1):
        print(f"vm:   guest run ended with status {guest_rc} (124: timeout, 125: no status)")
    return 0 if ok else 1


def mech_text(found):
    return ", ".join(f"{k} {'yes' if v == 'yes' else 'no'}" for k, v in found.items()) or "none"


def cell(m, mode=None, auto=None):
    if m is None:
        # A forced run of the mechanism auto picked repeats the auto run: not made.
        return "as auto" if mode == auto else "-"
    if m["status"] == "n/a":
        return "n/a"
    text = f"{m['passed']}/{m['run']}"
    if m["failed"]:
        text += f" ({m['failed']} failed)"
    if m["skipped"]:
        text += f" ({m['skipped']} skipped)"
    return f"{text}, {m['seconds']} s"


def summary(out, host_mech, dirs):
    modes = ["auto", "tp_btf", "raw_tp", "tracepoint"]
    rows = ["| kernel | arch | mechanisms found | auto picks | tests (auto run) | " +
            " | ".join(modes) + " | result | time |", "|" + "---|" * (len(modes) + 7)]
    found, auto = mechanisms(host_mech)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    rows.append(f"| {platform.release()} (this host) | {arch} | {mech_text(found)} | "
                f"{auto} | whole suite (ctest) | | | | | see ctest | - |")
    passed, failed, skipped, ok = 0, 0, 0, True
    for d in dirs:
        try:
            with open(os.path.join(d, "result.json")) as f:
                r = json.load(f)
        except OSError:
            rows.append(f"| {os.path.basename(d)} | - | - | - | - | " +
                        " | ".join("-" for _ in modes) + " | FAIL (no result) | - |")
            ok = False
            continue
        ok = ok and r["ok"]
        for m in r["modes"].values():
            if m["status"] != "n/a":
                passed += m["passed"]
                failed += m["failed"]
                skipped += m["skipped"]
        rows.append(f"| Debian {r['kernel']} ({r['kver']}) | {r.get('arch', '-')} | "
                    f"{mech_text(r['mechanisms'])} | {r['auto']} | {r.get('auto_set', '-')} | " +
                    " | ".join(cell(r["modes"].get(m), m, r["auto"]) for m in modes) +
                    f" | {'pass' if r['ok'] else 'FAIL'} | {r['seconds']} s |")
    text = "\n".join(rows) + "\n"
    with open(out, "w") as f:
        f.write(text)
    print(text, end="")
    # The plain closing line: test results counted over every guest run.
    print(f"vm: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "kernel":
        sys.exit(kernel(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])))
    if len(sys.argv) >= 4 and sys.argv[1] == "summary":
        sys.exit(summary(sys.argv[2], sys.argv[3], sys.argv[4:]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
