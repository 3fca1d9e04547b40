"""Screenshots for the model: PNG, downscaled to at most 1568 px on the long edge."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from deskloop.screen.tree import Box

# Anthropic's vision guidance: images over 1568 px on the long edge are scaled down anyway,
# and an image costs about width × height / 750 tokens.
MAX_LONG_EDGE = 1568
PIXELS_PER_TOKEN = 750


@dataclass(frozen=True)
class Screenshot:
    """A PNG of a screen area; `scale` maps image pixels back: screen = box.x + x / scale."""

    png: bytes
    width: int
    height: int
    scale: float
    box: Box

    @property
    def tokens(self) -> int:
        return screenshot_tokens(self.width, self.height)

    def describe(self) -> str:
        return (
            f"screenshot {self.width}x{self.height} px of the area at {self.box.x},{self.box.y} "
            f"size {self.box.width}x{self.box.height}, scale {self.scale:.3f} "
            f"(screen x = {self.box.x} + image x / {self.scale:.3f})"
        )


def screenshot_tokens(width: int, height: int) -> int:
    """Tokens a model charges for an image of this size (after the downscale)."""
    return round(width * height / PIXELS_PER_TOKEN)


def downscaled_size(width: int, height: int) -> tuple[int, int, float]:
    long_edge = max(width, height)
    if long_edge <= MAX_LONG_EDGE:
        return width, height, 1.0
    scale = MAX_LONG_EDGE / long_edge
    return max(round(width * scale), 1), max(round(height * scale), 1), scale


def make_screenshot(image: Image.Image, box: Box) -> Screenshot:
    """Downscale `image` (the pixels of `box`) if needed and encode it as PNG."""
    width, height, scale = downscaled_size(image.width, image.height)
    if scale != 1.0:
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return Screenshot(buffer.getvalue(), width, height, scale, box)
