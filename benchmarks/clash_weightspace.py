"""Weight-space clash report speed: two rank-32 LoRAs on an SD1.5-sized UNet (random factors, every
attention-block layer kohya trains + the 12-layer CLIP text encoder), read from kohya files.

Prints the time of: reading both files, the report (ΔW cosine, principal angles, projection energy,
per-block aggregation), and the compat fix; each against the < 5 s CPU target, plus the same
analysis done the naive way (dense ΔW per module) for comparison.

    python benchmarks/clash_weightspace.py [--rank 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lorastrap.clash.projection import compat_lora  # noqa: E402
from lorastrap.clash.synthetic import module_shapes, random_lora  # noqa: E402
from lorastrap.clash.weightspace import analyse  # noqa: E402
from lorastrap.models.lora import (
    kohya_tensors,  # noqa: E402
    read_lora,  # noqa: E402
)

TARGET_S = 5.0


def _dense_baseline(style, character) -> float:
    """The naive way: form both dense ΔW per module, cosine + projection via full SVD."""
    start = time.perf_counter()
    for key in set(style.modules) & set(character.modules):
        a, b = style.modules[key].delta(), character.modules[key].delta()
        _ = float((a * b).sum() / (a.norm() * b.norm()))
        u, s, _ = torch.linalg.svd(b, full_matrices=False)
        basis = u[:, : int((s > s[0] * 1e-6).sum())]
        _ = float((basis.T @ a).pow(2).sum() / a.pow(2).sum())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-dense", action="store_true", help="skip the slow dense comparison")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    shapes = module_shapes()
    meta = {"ss_base_model_version": "sd_v1", "ss_network_module": "networks.lora"}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for seed in (1, 2):
            lora = random_lora(shapes, args.rank, seed=seed, alpha=args.rank / 2, metadata=meta)
            path = Path(tmp) / f"lora{seed}.safetensors"
            save_file(kohya_tensors(lora), str(path), metadata=meta)
            paths.append(path)
        size_mb = sum(p.stat().st_size for p in paths) / 2**20
        reads, reports, fixes = [], [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            style, character = read_lora(paths[0]), read_lora(paths[1])
            t1 = time.perf_counter()
            report = analyse(style, character)
            t2 = time.perf_counter()
            compat_lora(style, character)
            t3 = time.perf_counter()
            reads.append(t1 - t0)
            reports.append(t2 - t1)
            fixes.append(t3 - t2)
    read_s, report_s, fix_s = min(reads), min(reports), min(fixes)
    print(f"SD1.5-size UNet + CLIP-L text encoder: {len(shapes)} modules per LoRA, rank {args.rank}, "
          f"{size_mb:.0f} MB of fp16 files, torch threads {torch.get_num_threads()}")
    print(f"read both files         {read_s:7.2f} s")
    print(f"weight-space report     {report_s:7.2f} s   ({len(report.blocks)} blocks, "
          f"{report.shared_modules} shared modules)")
    print(f"read + report           {read_s + report_s:7.2f} s   target < {TARGET_S:.0f} s: "
          f"{'PASS' if read_s + report_s < TARGET_S else 'FAIL'} ({(read_s + report_s) / TARGET_S:.2f} of target)")
    print(f"compat fix (projection) {fix_s:7.2f} s")
    if not args.skip_dense:
        dense = _dense_baseline(style, character)
        print(f"dense ΔW baseline       {dense:7.2f} s   thin-SVD report is {dense / report_s:.1f}x faster")


if __name__ == "__main__":
    main()
