#!/usr/bin/env bash
# Seeds each fuzz target's corpus (fuzz/corpus/<target>/, not committed) with the committed
# fixtures of its input kind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seed() { mkdir -p "fuzz/corpus/$1"; cp "${@:2}" "fuzz/corpus/$1/"; }
seed trajectory_reader tests/golden/*.safetensors assets/sample.safetensors
python3 - <<'PY'
# The manifests of the golden files, as the manifest target's seeds.
import json, pathlib, struct
out = pathlib.Path("fuzz/corpus/manifest"); out.mkdir(parents=True, exist_ok=True)
for path in pathlib.Path("tests/golden").glob("*.safetensors"):
    data = path.read_bytes(); n = struct.unpack("<Q", data[:8])[0]
    meta = json.loads(data[8:8 + n])["__metadata__"]
    (out / (path.stem + ".json")).write_text(meta["stepscope.manifest"])
PY
mkdir -p fuzz/corpus/model_config
i=0
while IFS= read -r file; do
  i=$((i + 1))
  cp "$file" "fuzz/corpus/model_config/$i-$(basename "$file")"
done < <(find tests/fixtures -name config.json -o -name '*.index.json')
seed tensor_file tests/fixtures/noise/*.safetensors
echo "corpus: $(for t in fuzz/corpus/*; do echo -n "$(basename "$t") $(ls "$t" | wc -l); "; done)"
