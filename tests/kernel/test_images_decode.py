"""Images people really have: what is stored must be the picture they see.

16-bit greyscale PNGs (clipped to white by a plain convert), phone JPEGs with an EXIF orientation,
CMYK JPEGs, palette PNGs with a transparent index, ICC profiles other than sRGB, animations. Each
goes through `character add` (seed crops) or the sprite exporter, and the stored pixels are
compared with the expected ones.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw

from lorastrap.characters import add_character
from lorastrap.images import load_image, seed_crops
from lorastrap.kernel.imageio import DecodeError, decode_image
from lorastrap.queries import get_character
from registry.models import Image as ImageRow


def _picture(size: tuple[int, int] = (96, 160)) -> Image.Image:
    """An asymmetric figure (so a rotation or a mirror shows) on a light ground."""
    im = Image.new("RGB", size, (240, 236, 228))
    d = ImageDraw.Draw(im)
    d.rectangle((10, 10, 50, 60), fill=(200, 40, 40))     # top-left block
    d.ellipse((40, 80, 90, 150), fill=(40, 60, 200))       # bottom-right blob
    return im


def _diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())


def _stored_seed(ws, slug: str) -> Image.Image:  # type: ignore[no-untyped-def]
    with ws.open_registry() as reg, reg.session(write=False) as s:
        c = get_character(s, slug)
        row = next(r for r in s.query(ImageRow).filter_by(character_id=c.id, origin="seed"))
        path = ws.blobs.path(row.blob_path)
    with Image.open(path) as im:
        return im.convert("RGB").copy()


def test_16_bit_greyscale_keeps_its_tones(tmp_path: Path) -> None:
    grey = np.asarray(_picture().convert("L"), dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(grey * 257).save(path)  # 0..65535, as scanners and 16-bit exports write
    assert Image.open(path).mode == "I;16"
    naive = Image.open(path).convert("RGB")
    assert np.asarray(naive).mean() > 250  # what a plain convert makes of it: nearly white

    loaded = load_image(path)
    assert loaded.image.mode == "RGB"
    assert np.abs(np.asarray(loaded.image)[..., 0].astype(int) - grey).max() <= 1
    assert any("16-bit" in n for n in loaded.notes)
    assert Image.open(io.BytesIO(loaded.data)).mode == "RGB"  # the stored bytes are the 8-bit image


def test_exif_rotated_phone_photo_is_stored_upright(workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upright = _picture()
    sensor = upright.rotate(90, expand=True)  # the camera stored it on its side ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... and says "rotate 90° clockwise to view"
    path = tmp_path / "phone.jpg"
    sensor.save(path, exif=exif.tobytes(), quality=95)

    r = add_character(workspace, "Phone", [path], "1girl, solo")
    stored = _stored_seed(workspace, r.slug)
    assert stored.size == upright.size
    assert _diff(stored, upright) < 4  # JPEG noise only
    assert any("EXIF orientation" in n for n in r.notes)
    crops = sorted((workspace.seed_dir(r.slug) / "crops").glob("*-face.png"))
    assert crops and Image.open(crops[0]).width <= upright.width  # crops cut from the upright image


def test_cmyk_jpeg_and_palette_transparency(tmp_path: Path) -> None:
    picture = _picture()
    cmyk = tmp_path / "print.jpg"
    picture.convert("CMYK").save(cmyk, quality=95)
    loaded = load_image(cmyk)
    assert loaded.image.mode == "RGB" and _diff(loaded.image, picture) < 6

    pal = picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    background = pal.getpixel((0, 0))
    path = tmp_path / "pal.png"
    pal.save(path, transparency=background)
    loaded = load_image(path)
    assert loaded.image.mode == "RGBA"
    alpha = np.asarray(loaded.image)[..., 3]
    assert alpha[0, 0] == 0 and alpha[30, 30] == 255  # the ground is see-through, the figure is not


def _adobe_rgb_profile() -> bytes:
    """A matrix/TRC ICC v2 profile with Adobe RGB (1998) primaries and gamma 2.2, written by hand
    (no ICC files ship on this machine); LittleCMS, the consumer, reads it."""
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    text = b"Adobe RGB (1998) compatible, test\0"
    desc = (b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67)
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 563) + b"\0\0"  # gamma 563/256 = 2.2
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.6097, 0.3111, 0.0195)),
            (b"gXYZ", xyz(0.2053, 0.6257, 0.0609)), (b"bXYZ", xyz(0.1492, 0.0632, 0.7446)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text" + b"\0" * 4 + b"none\0\0\0\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
              + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def test_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    picture = _picture()
    adobe = _adobe_rgb_profile()
    source = ImageCms.ImageCmsProfile(io.BytesIO(adobe))
    path = tmp_path / "adobe.png"
    picture.save(path, icc_profile=adobe)
    decoded = decode_image(path)
    expected = ImageCms.profileToProfile(picture, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    assert decoded.changed and any("ICC" in n for n in decoded.notes)
    assert _diff(decoded.image, expected) < 1
    assert _diff(decoded.image, picture) > 1  # the saturated red and blue really moved

    # an sRGB profile under another name (D50-adapted) changes nothing and keeps the bytes
    d50 = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB", 5000)).tobytes()
    picture.save(tmp_path / "srgb.png", icc_profile=d50)
    assert not decode_image(tmp_path / "srgb.png").changed


def test_animated_gif_is_refused_as_seed_and_first_frame_for_sprites(workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    frames = [_picture(), _picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    path = tmp_path / "walk.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(Exception, match="animated image \\(2 frames\\)"):
        add_character(workspace, "Gif", [path], "1girl")
    decoded = decode_image(path, animated="first")
    assert decoded.notes == ["animated (2 frames): only the first frame is used"]
    assert _diff(decoded.image.convert("RGB"), frames[0]) < 8  # GIF palette noise


def _grey16(path: Path) -> Image.Image:
    grey = np.asarray(_picture().convert("L"), dtype=np.uint16)
    Image.fromarray(grey * 257).save(path)  # I;16, as scanners and 16-bit exports write
    return Image.fromarray(grey.astype(np.uint8)).convert("RGB")


def _palette_transparent(path: Path) -> Image.Image:
    pal = _picture().convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    ground = pal.getpixel((0, 0))
    pal.save(path, transparency=ground)  # the ground's index is see-through
    seen = pal.convert("RGB")
    seen.putalpha(Image.fromarray(np.where(np.asarray(pal) == ground, 0, 255).astype(np.uint8)))
    return seen


def _cmyk_on_its_side(path: Path) -> Image.Image:
    """A print-shop JPEG: CMYK, stored on its side with an EXIF orientation, as Photoshop writes."""
    exif = Image.Exif()
    exif[0x0112] = 6
    _picture().rotate(90, expand=True).convert("CMYK").save(path, exif=exif.tobytes(), quality=95)
    return _picture()


def _animated(path: Path) -> None:
    frames = [_picture(), _picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)


SEED_FILES = {  # file name → writer returning the picture a person sees (None: refused)
    "scan16.png": _grey16, "palette.png": _palette_transparent, "print.jpg": _cmyk_on_its_side,
    "walk.gif": _animated, "walk-apng.png": _animated,
}


def _png_header(data: bytes) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR: Pillow opens 16-bit RGB as mode RGB, so the
    mode alone does not prove 8 bits."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return data[24], data[25]


@pytest.mark.parametrize("name", list(SEED_FILES))
def test_seed_images_people_have_are_stored_as_upright_8_bit_srgb_crops_by_character_add(
        workspace, cli_run, snapshot, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    expected = SEED_FILES[name](path)
    before = snapshot(workspace.root)
    r = cli_run("character", "add", "Kit", "--image", str(path), "--tags", "1girl, solo")
    if expected is None:  # an animation: which frame is the character is the user's choice
        assert r.code == 2 and "Traceback" not in r.err, r.err
        assert r.err.strip().count("\n") == 0 and "animated image (2 frames)" in r.err
        assert snapshot(workspace.root) == before  # nothing stored, no folder, no row
        return
    assert r.code == 0, r.err
    with workspace.open_registry() as reg, reg.session(write=False) as s:
        rows = list(s.query(ImageRow).filter(ImageRow.origin.in_(["seed", "crop"])))
        blobs = {row.file_name: workspace.blobs.path(row.blob_path).read_bytes() for row in rows}
    files = {p.name: p.read_bytes() for p in (workspace.seed_dir("kit") / "crops").glob("*.png")}
    assert len(rows) == 4 and len(files) == 4  # the full frame (the seed row) and three crops
    want = dict(seed_crops(expected, "zoom"))
    for file_name, data in [*blobs.items(), *files.items()]:
        depth, colour = _png_header(data)
        stored = Image.open(io.BytesIO(data))
        assert depth == 8 and colour in (2, 6), (file_name, depth, colour)  # 8-bit RGB / RGBA
        assert "icc_profile" not in stored.info  # sRGB: no other profile travels with the pixels
        piece = want["full"] if file_name == path.with_suffix(".png").name else \
            want[file_name.removeprefix(path.stem + "-").removesuffix(".png")]
        assert stored.size == piece.size  # upright: a sideways image has its width and height swapped
        assert stored.mode == expected.mode
        assert _diff(stored, piece) < 6, file_name  # the same picture (JPEG noise at most)
    if expected.mode == "RGBA":
        alpha = np.asarray(Image.open(io.BytesIO(files["palette-full.png"])))[..., 3]
        assert alpha[0, 0] == 0 and alpha[30, 30] == 255


def test_decode_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(DecodeError, match="not an image"):
        decode_image(tmp_path / "x.png")
    good = io.BytesIO()
    _picture().save(good, format="PNG")
    (tmp_path / "half.png").write_bytes(good.getvalue()[:200])
    with pytest.raises(DecodeError, match="corrupt or truncated"):
        decode_image(tmp_path / "half.png")
