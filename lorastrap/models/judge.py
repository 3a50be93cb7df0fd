"""The diffusion model as the curation assist's judge: a diffusion classifier (Li et al. 2023,
"Your Diffusion Model is Secretly a Zero-Shot Classifier", arXiv:2303.16203).

A candidate is noised at a few timesteps with fixed noise and the model predicts that noise under
the prompt the candidate was asked for and under prompts that change one attribute (another hair
colour, the colours swapped, the tag left out, another view). A model denoises an image best under
the prompt that describes it, so the asked prompt should have the lowest error in every question.
The same noise and timesteps are used for every prompt of an image (paired), which cancels most of
the noise of the estimate. Needs no weights beyond the base model (and the round's LoRA): it works
with the lab model and with any SD 1.x / SDXL checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

# Danbooru colour words; a tag "<colour> <thing>" is a colour question. Hair says blonde, the rest
# says yellow (the same colour family).
COLOURS = ("blonde", "yellow", "red", "orange", "green", "aqua", "blue", "purple", "pink", "brown",
           "black", "white", "grey")
SAME_FAMILY = {"blonde": "yellow", "yellow": "blonde"}
# Framing tags say how much of the figure shows, not from where: they are asked against each other.
FRAMING = frozenset({"full body", "upper body", "portrait", "close-up", "cowboy shot"})
# Only high noise levels: which colour goes where is decided there; at low and middle noise the
# image itself shows its colours and every prompt denoises it about equally well. Measured on the
# lab's round candidates against its reader: AUC 0.88-0.90 at t 850-990, 0.61-0.71 over 50-875.
DEFAULT_TIMESTEPS = (850, 900, 950, 990)
# A candidate passes when every asked attribute beats its alternatives by this relative margin
# (below it the two prompts explain the image about equally well: undecided is not a pass).
PASS_MARGIN = 0.002


def colour_of(tag: str) -> tuple[str, str] | None:
    """("blue", "dress") for "blue dress"; None for a tag that does not start with a colour."""
    head, _, rest = tag.partition(" ")
    return (head, rest) if head in COLOURS and rest else None


def _colour_word(colour: str, thing: str) -> str:
    if thing == "hair" and colour == "yellow":
        return "blonde"
    if thing != "hair" and colour == "blonde":
        return "yellow"
    return colour


def _family(colour: str) -> str:
    return "yellow" if colour == "blonde" else colour


@dataclass(frozen=True)
class Question:
    """One attribute of a candidate: the asked prompt against prompts that change only it."""
    name: str
    alternatives: tuple[str, ...]


@dataclass
class Verdict:
    """How a candidate answered its questions: margin = relative error gain of the asked prompt
    over the best alternative (> 0: the asked prompt explains the image best)."""
    margins: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(m > PASS_MARGIN for m in self.margins.values())

    @property
    def score(self) -> float:
        """The weakest answer: a candidate is as good as its worst attribute."""
        return min(self.margins.values()) if self.margins else 0.0

    @property
    def failed(self) -> list[str]:
        return [q for q, m in self.margins.items() if m <= PASS_MARGIN]


def build_questions(tags: Sequence[str], identity: Sequence[str], view: str | None,
                    views: Sequence[str], palette: Sequence[str] | None = None) -> tuple[str, list[Question]]:
    """The asked prompt (tags joined) and one question per identity tag and for the view.

    A colour tag is asked against the same thing in the character's other colours (the colours
    swapped: the common binding failure) and in `palette` colours (default: the character's own
    colours only); any other identity tag against the prompt without it; the view against the
    other configured views of its kind (framing against framing, direction against direction).
    """
    tags = list(tags)
    asked = ", ".join(tags)
    colours = [c for c in (colour_of(t) for t in identity) if c]
    own = {_family(c) for c, _ in colours}
    extra = {_family(c) for c in (palette or ())}
    questions: list[Question] = []

    def replaced(old: str, new: Sequence[str]) -> str:
        out: list[str] = []
        for t in tags:
            out.extend(new if t == old else [t])
        return ", ".join(dict.fromkeys(out))

    for tag in identity:
        if tag not in tags:
            continue
        parsed = colour_of(tag)
        alts: list[str] = []
        if parsed:
            colour, thing = parsed
            for other in sorted((own | extra) - {_family(colour)}):
                alts.append(replaced(tag, [f"{_colour_word(other, thing)} {thing}"]))
            # both colours swapped at once: the other colour tag takes this one's colour
            for other_tag in identity:
                o = colour_of(other_tag) if other_tag != tag else None
                if o and _family(o[0]) != _family(colour) and other_tag in tags:
                    swap = [t if t not in (tag, other_tag) else
                            (f"{_colour_word(o[0], thing)} {thing}" if t == tag
                             else f"{_colour_word(colour, o[1])} {o[1]}") for t in tags]
                    alts.append(", ".join(dict.fromkeys(swap)))
        else:
            alts.append(replaced(tag, []))
        alts = [a for a in dict.fromkeys(alts) if a != asked]
        if alts:
            questions.append(Question(tag, tuple(alts)))
    if view and view in tags:
        kind = view in FRAMING
        others = [v for v in views if v != view and (v in FRAMING) == kind and v not in tags]
        if others:
            questions.append(Question("view", tuple(replaced(view, [v]) for v in others)))
    return asked, questions


class DiffusionJudge:
    """Denoising errors of images under prompts, with a loaded diffusers pipeline (and whatever
    LoRA adapters are active on it)."""

    def __init__(self, pipe, timesteps: Sequence[int] = DEFAULT_TIMESTEPS, noises: int = 2,
                 seed: int = 0, batch: int = 64) -> None:
        self.pipe = pipe
        self.timesteps = [int(t) for t in timesteps]
        self.noises, self.seed, self.batch = noises, seed, batch
        self._text: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    @property
    def device(self) -> torch.device:
        return self.pipe.unet.device

    def _embed(self, prompts: Sequence[str]) -> None:
        todo = [p for p in dict.fromkeys(prompts) if p not in self._text]
        if not todo:
            return
        sdxl = getattr(self.pipe, "text_encoder_2", None) is not None
        with torch.no_grad():
            if sdxl:
                emb, _, pooled, _ = self.pipe.encode_prompt(todo, device=self.device, num_images_per_prompt=1,
                                                            do_classifier_free_guidance=False)
                for i, p in enumerate(todo):
                    self._text[p] = (emb[i], pooled[i])
            else:
                emb, _ = self.pipe.encode_prompt(todo, self.device, 1, False)
                for i, p in enumerate(todo):
                    self._text[p] = (emb[i], None)

    def _latents(self, images: Sequence[Image.Image]) -> torch.Tensor:
        vae = self.pipe.vae
        size = int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)
        arr = np.stack([np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC),
                                   dtype=np.float32) / 127.5 - 1.0 for im in images])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).to(self.device, vae.dtype)
        with torch.no_grad():
            latents = vae.encode(x).latent_dist.mean
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return ((latents - shift) * vae.config.scaling_factor).float()

    def _noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        return torch.randn((self.noises, len(self.timesteps), *shape), generator=g)

    def errors(self, images: Sequence[Image.Image], prompts: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Mean squared noise-prediction error of image i under each of prompts[i] (one array per
        image, in the order of its prompts), over the timesteps and noises."""
        if len(images) != len(prompts):
            raise ValueError("need one prompt list per image")
        self._embed([p for ps in prompts for p in ps])
        latents = self._latents(images)
        noise = self._noise(tuple(latents.shape[1:]))
        alphas = self.pipe.scheduler.alphas_cumprod.float()
        unet = self.pipe.unet
        sdxl = getattr(self.pipe, "text_encoder_2", None) is not None
        # one row per (image, prompt, noise, timestep): all prompts of an image see the same noise
        rows = [(i, j, k, s) for i, ps in enumerate(prompts) for j in range(len(ps))
                for k in range(self.noises) for s in range(len(self.timesteps))]
        sums = [np.zeros(len(ps)) for ps in prompts]
        dtype = unet.dtype
        for a in range(0, len(rows), self.batch):
            chunk = rows[a:a + self.batch]
            t = torch.tensor([self.timesteps[s] for _, _, _, s in chunk])
            eps = torch.stack([noise[k, s] for _, _, k, s in chunk])
            x0 = torch.stack([latents[i] for i, _, _, _ in chunk]).cpu()
            at = alphas[t].view(-1, 1, 1, 1)
            noisy = at.sqrt() * x0 + (1 - at).sqrt() * eps
            texts = [self._text[prompts[i][j]] for i, j, _, _ in chunk]
            cond = torch.stack([e for e, _ in texts]).to(self.device, dtype)
            extra = {}
            if sdxl:
                size = int(unet.config.sample_size) * int(self.pipe.vae_scale_factor)
                ids = torch.tensor([[size, size, 0, 0, size, size]] * len(chunk), dtype=dtype, device=self.device)
                extra["added_cond_kwargs"] = {"text_embeds": torch.stack([p for _, p in texts]).to(self.device, dtype),
                                              "time_ids": ids}
            with torch.no_grad():
                pred = unet(noisy.to(self.device, dtype), t.to(self.device), cond, **extra).sample
            err = ((pred.float().cpu() - eps) ** 2).mean(dim=(1, 2, 3)).numpy()
            for (i, j, _, _), e in zip(chunk, err):
                sums[i][j] += e
        per = self.noises * len(self.timesteps)
        return [s / per for s in sums]

    def judge(self, images: Sequence[Image.Image],
              questions: Sequence[tuple[str, Sequence[Question]]]) -> list[Verdict]:
        """One verdict per image from its (asked prompt, questions)."""
        prompt_lists = []
        for asked, qs in questions:
            prompt_lists.append([asked, *dict.fromkeys(a for q in qs for a in q.alternatives)])
        errs = self.errors(images, prompt_lists)
        verdicts = []
        for (asked, qs), plist, err in zip(questions, prompt_lists, errs):
            index = {p: n for n, p in enumerate(plist)}
            base = float(err[0])
            margins = {q.name: (min(float(err[index[a]]) for a in q.alternatives) - base) / max(base, 1e-8)
                       for q in qs}
            verdicts.append(Verdict(margins))
        return verdicts
