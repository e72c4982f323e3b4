"""The text layer solved from a draft and its render without text (coco_agent/refiners/text_layer.py): over the
bare draft it gives the draft back, over another background it keeps every glyph where it was, and it is refused
when the two renders disagree outside the text, agree everywhere, or differ in size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from support.text_renders import font

from coco_agent.refiners.text_layer import LayerRefused, composite, split_text


def _scene(text: bool, shadow: bool = True) -> Image.Image:
    """A gradient with a shape; with ``text``, a bright antialiased title with a dark soft shadow."""
    ramp = np.linspace(40, 200, 480, dtype=np.uint8)
    pixels = np.dstack(
        [np.tile(ramp, (240, 1)), np.full((240, 480), 90, np.uint8), np.tile(ramp[::-1], (240, 1))]
    )
    image = Image.fromarray(pixels, "RGB")
    ImageDraw.Draw(image).ellipse((360, 20, 450, 110), fill=(250, 170, 30))
    if text:
        if shadow:
            glow = Image.new("L", image.size, 0)
            ImageDraw.Draw(glow).text((43, 83), "OPEN LATE", fill=200, font=font(48))
            image.paste((0, 0, 0), mask=glow.filter(ImageFilter.GaussianBlur(2)))
        ImageDraw.Draw(image).text((40, 80), "OPEN LATE", fill=(255, 250, 220), font=font(48))
        ImageDraw.Draw(image).text((40, 170), "since 1999", fill=(20, 30, 140), font=font(24))
    return image


BOXES = [(40, 80, 330, 140), (40, 170, 200, 200)]


def _array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=int)


def test_the_layer_over_the_bare_draft_is_the_draft():
    draft, bare = _scene(True), _scene(False)
    layer = split_text(draft, bare, BOXES)
    back = composite(bare, layer.layer)
    assert np.abs(_array(back) - _array(draft)).max() <= 4  # 8-bit rounding of colour and alpha
    assert layer.pixels > 2000 and layer.outside < 100  # the soft shadow reaches a little past the boxes
    alpha = np.asarray(layer.layer)[..., 3]
    assert alpha[:60].max() == 0 and alpha[:, 340:].max() == 0  # nothing where there is no text


def test_over_a_new_background_the_glyphs_stay_where_they_were():
    draft, bare = _scene(True), _scene(False)
    layer = split_text(draft, bare, BOXES)
    green = composite(Image.new("RGB", draft.size, (0, 160, 80)), layer.layer)
    core = np.asarray(layer.layer)[..., 3] == 255  # fully covered glyph pixels
    assert core.sum() > 500
    assert np.abs(_array(green)[core] - _array(draft)[core]).max() <= 1
    untouched = np.asarray(layer.layer)[..., 3] == 0
    assert (_array(green)[untouched] == (0, 160, 80)).all()


def test_a_render_that_differs_outside_the_text_is_refused():
    draft, bare = _scene(True), _scene(False)
    ImageDraw.Draw(bare).rectangle((360, 150, 470, 230), fill=(0, 0, 0))  # drew something else this time
    with pytest.raises(LayerRefused, match="outside its text boxes"):
        split_text(draft, bare, BOXES)


def test_hiding_that_changed_nothing_is_refused():
    with pytest.raises(LayerRefused, match="changed nothing"):
        split_text(_scene(True), _scene(True), BOXES)


def test_a_size_mismatch_and_unknown_boxes_are_refused():
    with pytest.raises(LayerRefused, match="480x240"):
        split_text(_scene(True), _scene(False).resize((400, 200)), BOXES)
    with pytest.raises(LayerRefused, match="did not report"):
        split_text(_scene(True), _scene(False), [])


def test_a_refined_picture_of_another_size_is_brought_to_the_layer_size():
    draft, bare = _scene(True, shadow=False), _scene(False)
    layer = split_text(draft, bare, BOXES)
    out = composite(bare.resize((960, 480)), layer.layer)
    assert out.size == draft.size


@pytest.mark.parametrize(
    ("ink", "ground"), [((255, 255, 255), (200, 20, 30)), ((230, 0, 0), (255, 255, 255))]
)
def test_a_saturated_channel_keeps_the_glyph_edges_right_on_another_background(ink, ground):
    """White on red and red on white: a channel at 255 in both renders says nothing about coverage (it used to
    make every edge pixel opaque); drawn straight onto green the same glyphs must come out the same."""

    def draw(background):
        image = Image.new("RGB", (640, 240), background)
        ImageDraw.Draw(image).text((20, 30), "SALE 50%", fill=ink, font=font(56))
        return image

    layer = split_text(draw(ground), Image.new("RGB", (640, 240), ground), [(20, 30, 340, 100)])
    green = composite(Image.new("RGB", (640, 240), (0, 160, 80)), layer.layer)
    assert np.abs(_array(green) - _array(draw((0, 160, 80)))).max() <= 3


def test_boxes_over_most_of_the_canvas_and_changes_far_from_the_text_are_refused():
    draft, bare = _scene(True), _scene(False)
    with pytest.raises(LayerRefused, match="cover"):
        split_text(draft, bare, [(0, 0, 480, 240)])
    moved = _scene(False)
    ImageDraw.Draw(moved).rectangle(
        (440, 200, 460, 215), fill=(0, 255, 0)
    )  # small, but nowhere near the text
    with pytest.raises(LayerRefused, match="far"):
        split_text(draft, moved, BOXES)


def test_a_transparent_draft_is_split_as_it_is_seen_on_white():
    """Black text on a transparent canvas (a program that never paints a background): the critic and the
    refiner see it on white, and so does the split; dropping the alpha would put the text on black and find
    nothing to split."""

    def scene(text: bool) -> Image.Image:
        image = Image.new("RGBA", (320, 120), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        draw.rectangle((230, 20, 300, 100), fill=(200, 40, 40, 255))
        if text:
            draw.text((20, 40), "SALE", fill=(0, 0, 0, 255), font=font(40))
        return image

    layer = split_text(scene(True), scene(False), [(20, 40, 140, 90)])
    assert layer.draft.mode == layer.bare.mode == "RGB"
    assert layer.bare.getpixel((5, 5)) == (255, 255, 255) and layer.bare.getpixel((260, 60)) == (200, 40, 40)
    assert layer.pixels > 300
    back = composite(layer.bare, layer.layer)
    assert np.abs(_array(back) - _array(layer.draft)).max() <= 4
