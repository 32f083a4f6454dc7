"""Reads the golden trajectory with Python's standard `safetensors` package and checks every value.

Usage: python tests/golden/check_with_python.py [path]   (needs `safetensors` and `torch`;
numpy alone has no bfloat16, and the golden file stores its velocities as BF16).

The expected values mirror `synthetic_tensors` and `synthetic_value` in
`tests/trajectory_golden.rs`.
"""

import json
import sys
from pathlib import Path

from safetensors import safe_open

MANIFEST_KEY = "stepscope.manifest"


def expected_names(manifest):
    """The golden file's tensor names, in the order the Rust generator numbers them."""
    captures = manifest["captures"]
    for seed_idx, seed in enumerate(manifest["seeds"]):
        for step_idx in seed["steps"]:
            for kind in ("latents", "velocity", "x0"):
                yield f"s{seed_idx}/k{step_idx}/{kind}"
            if step_idx in seed["capture_steps"]:
                for layer_idx in captures["layers"]:
                    for kind in captures["kinds"]:
                        yield f"s{seed_idx}/k{step_idx}/layer{layer_idx}/{kind}"
        yield f"s{seed_idx}/final/latents"


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("trajectory_v1.safetensors")
    with safe_open(path, framework="pt") as file:
        manifest = json.loads(file.metadata()[MANIFEST_KEY])
        assert manifest["format_version"] == 1, manifest["format_version"]
        names = list(expected_names(manifest))
        assert sorted(names) == sorted(file.keys()), "tensor names differ"
        for tensor_idx, name in enumerate(names):
            values = file.get_tensor(name).float().reshape(-1).tolist()
            expected = [((i * 7 + tensor_idx * 13) % 33) / 8 - 2 for i in range(len(values))]
            assert values == expected, name
    print(f"{path}: {len(names)} tensors, every value as expected")


if __name__ == "__main__":
    main()
