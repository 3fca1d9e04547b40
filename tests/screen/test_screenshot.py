"""Screenshot downscaling and the scale that maps image pixels back to the screen."""

from __future__ import annotations

import io

from PIL import Image

from deskloop.screen.screenshot import downscaled_size, make_screenshot, screenshot_tokens
from deskloop.screen.tree import Box


def test_small_images_keep_their_size() -> None:
    assert downscaled_size(1366, 741) == (1366, 741, 1.0)
    assert screenshot_tokens(1366, 741) == 1350


def test_long_edge_is_capped_at_1568_and_the_scale_reported() -> None:
    image = Image.new("RGB", (3136, 1000), "white")
    shot = make_screenshot(image, Box(10, 20, 3136, 1000))
    assert (shot.width, shot.height, shot.scale) == (1568, 500, 0.5)
    decoded = Image.open(io.BytesIO(shot.png))
    assert decoded.size == (1568, 500)
    assert "screen x = 10 + image x / 0.500" in shot.describe()
