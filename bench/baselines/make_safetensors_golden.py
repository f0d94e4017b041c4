#!/usr/bin/env python3
"""Writes test/train/golden/python.safetensors with the reference safetensors library, so the
TypeScript reader (src/train/safetensors.ts) is checked against files the Hugging Face
implementation produces. test/train/safetensors.test.ts recomputes the same values.

Values are deterministic formulas of the element index i (no random seed needed):
  f32_odd  F32 [3, 7, 5]    (i * 0.25 - 13) / 3
  i32_vec  I32 [17]         i * i - 100
  f64_mat  F64 [2, 3]       i / 7
  i64_col  I64 [5, 1]       (i - 2) * 2**40
  u8_img   U8  [1, 4, 4]    i * 16 + 3   (mod 256)
  bool_m   BOOL [3]         [True, False, True]
  f16_h    F16 [4]          [1.0, -2.5, 0.0, 65504.0]
  scalar   F32 []           3.5
  empty    F32 [0, 4]       (no values)
metadata: {"format": "np", "writer": "make_safetensors_golden.py"}

Run: python3 bench/baselines/make_safetensors_golden.py   (needs numpy and safetensors)
Written with safetensors 0.8.0 and numpy 2.4.6.
"""
import os
import sys

import numpy as np
from safetensors.numpy import save_file, load_file


def tensors():
    return {
        "f32_odd": ((np.arange(105, dtype=np.float64) * 0.25 - 13) / 3).astype(np.float32).reshape(3, 7, 5),
        "i32_vec": (np.arange(17, dtype=np.int64) ** 2 - 100).astype(np.int32),
        "f64_mat": (np.arange(6, dtype=np.float64) / 7).reshape(2, 3),
        "i64_col": ((np.arange(5, dtype=np.int64) - 2) * 2**40).reshape(5, 1),
        "u8_img": ((np.arange(16) * 16 + 3) % 256).astype(np.uint8).reshape(1, 4, 4),
        "bool_m": np.array([True, False, True]),
        "f16_h": np.array([1.0, -2.5, 0.0, 65504.0], dtype=np.float16),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = os.path.join(root, "test", "train", "golden", "python.safetensors")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    t = tensors()
    save_file(t, out, metadata={"format": "np", "writer": "make_safetensors_golden.py"})
    back = load_file(out)
    for k, v in t.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and np.array_equal(back[k], v), k
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")

    # Optional: check that a file written by imagerate reads back here (interop the other way).
    if len(sys.argv) > 1:
        from safetensors import safe_open
        with safe_open(sys.argv[1], framework="np") as f:
            print("metadata:", f.metadata())
            for k in f.keys():
                a = f.get_tensor(k)
                print(f"  {k}: {a.dtype} {list(a.shape)} first {a.reshape(-1)[:3].tolist()}")


if __name__ == "__main__":
    main()
