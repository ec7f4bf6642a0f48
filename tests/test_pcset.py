import numpy as np

from chordvae.chords.pcset import from_mask, masks_to_rows, rows_to_masks, to_mask


def test_mask_round_trip_and_known_values():
    assert to_mask([0, 4, 7]) == 145
    assert to_mask([12, 16, 7]) == 145          # pitch classes are taken mod 12
    assert from_mask(145) == (0, 4, 7)
    assert from_mask(0) == ()
    for mask in (1, 2048, 4095, 1234):
        assert to_mask(from_mask(mask)) == mask


def test_rows_and_masks_round_trip():
    rows = np.array([[1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0],
                     [0] * 11 + [1]], dtype=np.uint8)
    masks = rows_to_masks(rows)
    assert masks.tolist() == [145, 2048]
    assert (masks_to_rows(masks) == rows).all()
    assert rows_to_masks(np.array([[0.49, 0.5]])).tolist() == [2]   # probabilities: >= 0.5 is set

