"""Draw the app icons: color.png (192×192, full bleed) and outline.png (32×32, white on transparent).

The design is a document with a folded corner and a check mark, on municipal blue. Both
icons are drawn at a larger size and scaled down for smooth edges. Run after changing the
design and commit the PNGs:

    .venv/bin/python -m manifest.make_icons [--out-dir manifest]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

COLOR_SIZE = 192
OUTLINE_SIZE = 32
# Municipal blue; the same value is the manifest's accentColor.
BLUE = (0, 84, 153)
BLUE_DARK = (0, 61, 112)
WHITE = (255, 255, 255)
PAPER_FOLD = (208, 224, 240)

_HERE = Path(__file__).resolve().parent


def _scaled(points: Sequence[tuple[float, float]], factor: float) -> list[tuple[float, float]]:
    return [(x * factor, y * factor) for x, y in points]


def draw_color_icon(size: int = COLOR_SIZE, supersample: int = 4) -> Image.Image:
    """Full-bleed blue square, a white document with a folded corner and a blue check mark."""
    big = size * supersample
    f = big / 192  # the design is laid out on a 192-unit grid
    image = Image.new("RGB", (big, big), BLUE)
    draw = ImageDraw.Draw(image)

    # Document: 96 × 120 units, centred, top-right corner folded.
    left, top, right, bottom, fold = 48, 34, 144, 158, 30
    body = [
        (left, top + 8),
        (left + 8, top),
        (right - fold, top),
        (right, top + fold),
        (right, bottom - 8),
        (right - 8, bottom),
        (left + 8, bottom),
        (left, bottom - 8),
    ]
    draw.polygon(_scaled(body, f), fill=WHITE)
    draw.polygon(
        _scaled([(right - fold, top), (right - fold, top + fold), (right, top + fold)], f),
        fill=PAPER_FOLD,
    )
    # Two text lines above the check mark.
    for y in (64, 80):
        draw.rounded_rectangle(
            _flat(_scaled([(62, y), (right - fold - 4 if y == 64 else 128, y + 7)], f)),
            radius=3.5 * f,
            fill=PAPER_FOLD,
        )
    # Check mark.
    draw.line(
        _scaled([(70, 118), (89, 137), (124, 99)], f),
        fill=BLUE_DARK,
        width=round(13 * f),
        joint="curve",
    )
    for x, y in ((70, 118), (124, 99)):
        r = 6.5 * f
        draw.ellipse((x * f - r, y * f - r, x * f + r, y * f + r), fill=BLUE_DARK)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def draw_outline_icon(size: int = OUTLINE_SIZE, supersample: int = 8) -> Image.Image:
    """White document outline with a check mark; every pixel is white, only alpha varies."""
    big = size * supersample
    f = big / 32  # laid out on a 32-unit grid
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    stroke = round(2.2 * f)
    left, top, right, bottom, fold = 7, 3, 25, 29, 6
    outline = [
        (left, top),
        (right - fold, top),
        (right, top + fold),
        (right, bottom),
        (left, bottom),
        (left, top),
    ]
    draw.line(_scaled(outline, f), fill=255, width=stroke, joint="curve")
    draw.line(
        _scaled([(right - fold, top), (right - fold, top + fold), (right, top + fold)], f),
        fill=255,
        width=stroke,
        joint="curve",
    )
    draw.line(_scaled([(11, 17), (15, 21), (21, 13)], f), fill=255, width=stroke, joint="curve")
    alpha = mask.resize((size, size), Image.Resampling.LANCZOS)
    image = Image.new("RGBA", (size, size), (*WHITE, 0))
    image.putalpha(alpha)
    return image


def _flat(points: Sequence[tuple[float, float]]) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = points
    return (x0, y0, x1, y1)


def write_icons(out_dir: Path = _HERE) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    color_path = out_dir / "color.png"
    outline_path = out_dir / "outline.png"
    draw_color_icon().save(color_path, format="PNG", optimize=True)
    draw_outline_icon().save(outline_path, format="PNG", optimize=True)
    return color_path, outline_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tegn app-ikonene (draw the app icons).")
    parser.add_argument("--out-dir", type=Path, default=_HERE, help="målmappe (output directory)")
    args = parser.parse_args(argv)
    for path in write_icons(args.out_dir):
        print(f"skrev {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
