"""Electrodes: montage strings, shapes, cap names and positions on the scalp."""

from __future__ import annotations

import numpy as np
import pytest

from neurotwin_db.errors import InputError
from neurotwin_db.modelling.efield._electrodes import (
    Scalp,
    Shape,
    cap_positions,
    parse_montage,
    place,
    place_montage,
    read_positions,
)
from neurotwin_db.modelling.headmodel import HeadMesh


def test_currents_must_sum_to_zero() -> None:
    with pytest.raises(InputError, match=r"sum to zero.*F3 \+2 mA, Fp2 -1.5 mA.*\+0.5 mA"):
        parse_montage("F3:2.0,Fp2:-1.5")


@pytest.mark.parametrize("text", ["F3", "F3:abc,Fp2:1", "F3:1,F3:-1", "F3:0,Fp2:0"])
def test_bad_montage_strings(text: str) -> None:
    with pytest.raises(InputError):
        parse_montage(text)


@pytest.mark.parametrize("text", ["disc", "disc:0mm", "rect:50mm", "disc:10x10mm", "ring:5"])
def test_bad_shapes(text: str) -> None:
    with pytest.raises(InputError, match="electrode shape"):
        Shape.parse(text)


def test_unknown_electrode_name_suggests_close_names(box: HeadMesh) -> None:
    with pytest.raises(InputError, match=r"'FP3' is not in cap standard_1020.*did you mean"):
        place_montage(box, [("FP3", 1.0), ("Fp2", -1.0)], Shape("point"), cap="standard_1020")


def test_cap_names_are_case_insensitive_and_land_on_the_scalp(box: HeadMesh) -> None:
    electrodes = place_montage(box, [("cz", 1.0), ("FP2", -1.0)], Shape("point"),
                               cap="standard_1010")
    scalp = Scalp.of(box)
    for e in electrodes:
        assert e.nodes[0] in scalp.nodes and e.weights.sum() == pytest.approx(1.0)
    assert electrodes[0].centre_mm[2] == pytest.approx(10.0)  # Cz: top face of the cube


def test_template_cap_positions_are_in_millimetres() -> None:
    cz = cap_positions("standard_1005", template=True)["Cz"]
    assert 80 < np.linalg.norm(cz) < 130


def test_position_off_the_scalp_is_refused(box: HeadMesh) -> None:
    scalp = Scalp.of(box)
    with pytest.raises(InputError, match=r"electrode 'X1'.*mm off the scalp"):
        place(scalp, "X1", 1.0, np.array([5.0, 5.0, 40.0]), Shape("point"), explicit=True)


def test_disc_covers_nodes_within_its_radius(box: HeadMesh) -> None:
    scalp = Scalp.of(box)
    e = place(scalp, "A", 1.0, np.array([5.0, 5.0, 10.0]), Shape("disc", (2.6,)),
              explicit=True)
    assert np.all(np.linalg.norm(box.nodes[e.nodes] - [5, 5, 10], axis=1) <= 2.6)
    assert len(e.nodes) == 13  # grid points (1.25 mm apart) with i² + j² ≤ 4.33 on top
    assert e.weights.sum() == pytest.approx(1.0)


def test_overlapping_electrodes_are_refused(box: HeadMesh) -> None:
    positions = {"A": np.array([5.0, 5.0, 10.0]), "B": np.array([6.25, 5.0, 10.0])}
    with pytest.raises(InputError, match="'A' and 'B' overlap"):
        place_montage(box, [("A", 1.0), ("B", -1.0)], Shape("disc", (3.0,)),
                      positions=positions)


def test_positions_file(tmp_path) -> None:
    good = tmp_path / "el.tsv"
    good.write_text("name\tx\ty\tz\nA\t1\t2\t3\n", encoding="utf-8")
    assert read_positions(good)["A"].tolist() == [1.0, 2.0, 3.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("name,x,y\nA,1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.csv, line 2: need columns name, x, y, z"):
        read_positions(bad)
