# Sourced by package.sh and install.sh: discovers the plugin crates (every plugins/*/ whose
# package builds a `notation-<name>` binary), so plugins added later need no script edits.
# Prints "<package> <plugin name> <version>" per plugin.
list_plugins() {
  cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys, os
meta = json.load(sys.stdin)
root = meta["workspace_root"]
for p in sorted(meta["packages"], key=lambda p: p["name"]):
    rel = os.path.relpath(os.path.dirname(p["manifest_path"]), root)
    if not rel.startswith("plugins" + os.sep):
        continue
    bins = [t["name"] for t in p["targets"] if "bin" in t["kind"] and t["name"].startswith("notation-")]
    for b in bins:
        print(p["name"], b[len("notation-"):], p["version"])
'
}
