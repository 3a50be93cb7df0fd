"""The likely trigger words of a LoRA that does not state them, from its training captions.

kohya sd-scripts records how often each caption tag occurred per dataset folder
(`ss_tag_frequency`, counted once per image) and how many images each folder held
(`ss_dataset_dirs`). A tag in (nearly) every caption is what the LoRA learnt to answer to — for a
style LoRA trained on "pixel art, …" captions, "pixel art" — unless it is one of the generic tags
that nearly every anime-style caption carries.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

NEARLY_EVERY = 0.9
GENERIC_TAGS = frozenset({
    "1girl", "1boy", "2girls", "2boys", "multiple girls", "multiple boys", "solo", "solo focus",
    "simple background", "white background", "transparent background", "grey background",
    "looking at viewer", "full body", "upper body", "cowboy shot", "portrait", "standing", "smile",
    "open mouth", "closed mouth", "blush", "masterpiece", "best quality", "high quality", "absurdres",
    "highres",
})


@dataclass(frozen=True)
class TriggerProposal:
    words: tuple[str, ...]  # tags in ≥ NEARLY_EVERY of the captions, generic ones left out
    captions: int
    counts: dict[str, int]

    @property
    def phrase(self) -> str:
        return ", ".join(self.words)

    def describe(self) -> str:
        shares = ", ".join(f"{w!r} in {self.counts[w]} of {self.captions}" for w in self.words)
        return f"{shares} training captions (ss_tag_frequency)"


def _json(metadata: Mapping[str, str], key: str) -> dict:
    try:
        value = json.loads(metadata.get(key) or "{}")
    except (json.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def propose_trigger(metadata: Mapping[str, str]) -> TriggerProposal | None:
    """The tags in (nearly) every training caption, or None when the metadata does not tell."""
    frequency, dirs = _json(metadata, "ss_tag_frequency"), _json(metadata, "ss_dataset_dirs")
    counts: Counter[str] = Counter()
    captions = 0
    for folder, tags in frequency.items():
        if not isinstance(tags, dict):
            continue
        folder_counts = {str(t).strip(): int(n) for t, n in tags.items() if str(t).strip() and isinstance(n, (int, float))}
        counts.update(folder_counts)
        info = dirs.get(folder) if isinstance(dirs.get(folder), dict) else {}
        # without ss_dataset_dirs, the most frequent tag's count is the best lower bound of the images
        captions += int(info.get("img_count") or 0) or max(folder_counts.values(), default=0)
    if not captions:
        return None
    words = tuple(t for t, n in counts.most_common()
                  if n >= NEARLY_EVERY * captions and t.lower() not in GENERIC_TAGS)
    return TriggerProposal(words, captions, dict(counts)) if words else None
