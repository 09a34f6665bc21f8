"""Parse Debian bookworm apt metadata (Packages + Translation-en) into one JSONL record per package.

Output: .work/packages.jsonl with name, source, section, maintainer, homepage, depends,
installed_size, tags, short, long (paragraphs joined with blank lines).
"""
import json, lzma, os, re, subprocess, sys
from common import WORK

PKG_LISTS = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
TRANS = os.path.join(WORK, "Translation-en.xz")


def stanzas(text):
    for block in text.split("\n\n"):
        fields, key = {}, None
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t" and key:
                fields[key] += "\n" + line
            else:
                key, _, val = line.partition(":")
                fields[key] = val.strip()
        if fields:
            yield fields


def long_description(raw):
    # Debian long-description format: leading space, " ." is a blank line.
    paras, cur = [], []
    for line in raw.split("\n")[1:]:
        line = line[1:] if line.startswith(" ") else line
        if line.strip() == ".":
            if cur:
                paras.append(" ".join(cur))
            cur = []
        elif line.startswith(" "):  # verbatim (lists, code): keep as its own line
            cur.append(line.strip())
        else:
            cur.append(line.strip())
    if cur:
        paras.append(" ".join(cur))
    return "\n\n".join(p for p in paras if p)


def main():
    text = subprocess.run(["lz4", "-dc", PKG_LISTS], capture_output=True, check=True).stdout.decode("utf-8", "replace")
    trans = {}
    for f in stanzas(lzma.open(TRANS).read().decode("utf-8", "replace")):
        if "Description-en" in f:
            trans[(f["Package"], f.get("Description-md5"))] = f["Description-en"]
    out = []
    for f in stanzas(text):
        name = f.get("Package")
        if not name:
            continue
        desc = trans.get((name, f.get("Description-md5")))
        if desc is None:
            continue
        short = desc.split("\n")[0].strip()
        src = f.get("Source", name).split(" ")[0]
        maint = re.sub(r"\s*<.*", "", f.get("Maintainer", "")).strip()
        deps = [re.split(r"[\s(:]", d.strip().split("|")[0].strip())[0] for d in f.get("Depends", "").split(",") if d.strip()]
        tags = [t.strip() for t in f.get("Tag", "").replace("\n", " ").split(",") if t.strip()]
        out.append(dict(name=name, source=src, section=f.get("Section", ""), maintainer=maint,
                        homepage=f.get("Homepage", ""), depends=deps, version=f.get("Version", ""),
                        installed_size=int(f.get("Installed-Size", "0") or 0), tags=tags,
                        short=short, long=long_description(desc)))
    with open(os.path.join(WORK, "packages.jsonl"), "w") as fh:
        for r in out:
            fh.write(json.dumps(r) + "\n")
    print(f"packages: {len(out)}", file=sys.stderr)


if __name__ == "__main__":
    main()
