"""von Economo 7-class table and class-level MS (Martins et al. 2022, §2.6)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bids_ms.atlas import DK_REGIONS
from bids_ms.economo import ECONOMO_CLASS_NAMES, class_ms, load_von_economo

LIMBIC = {
    "caudalanteriorcingulate",
    "rostralanteriorcingulate",
    "posteriorcingulate",
    "isthmuscingulate",
    "entorhinal",
    "parahippocampal",
}


def test_table_covers_dk_with_seven_classes():
    t = load_von_economo()
    assert list(t.index) == list(DK_REGIONS)
    assert set(t["von_economo_class"]) == set(range(1, 8))
    counts = t["von_economo_class"].value_counts().to_dict()
    assert counts == {1: 4, 2: 20, 3: 16, 4: 8, 5: 6, 6: 12, 7: 2}
    assert (t["class_name"] == t["von_economo_class"].map(ECONOMO_CLASS_NAMES)).all()
    # both hemispheres carry the same classes
    np.testing.assert_array_equal(
        t["von_economo_class"].iloc[:34], t["von_economo_class"].iloc[34:]
    )


def test_table_agrees_with_nspn_types():
    """Classes 1-5 are the NSPN 308-region five-type codes; limbic and insular override them."""
    t = load_von_economo()
    struct = t.index.str.split("_", n=1).str[1]
    limbic = struct.isin(LIMBIC)
    insula = struct == "insula"
    assert (t.loc[limbic, "von_economo_class"] == 6).all()
    assert (t.loc[insula, "von_economo_class"] == 7).all()
    rest = ~(limbic | insula)
    assert (t.loc[rest, "von_economo_class"] == t.loc[rest, "nspn_type"]).all()


def test_class_ms_is_mean_of_member_regions():
    rng = np.random.default_rng(0)
    reg = pd.DataFrame(rng.normal(size=(5, 68)), columns=list(DK_REGIONS))
    cls = class_ms(reg)
    assert list(cls.columns) == list(ECONOMO_CLASS_NAMES.values())
    t = load_von_economo()
    members = t.index[t["von_economo_class"] == 6]
    np.testing.assert_allclose(cls["limbic"], reg[members].mean(axis=1))
    np.testing.assert_allclose(class_ms(reg.to_numpy()).to_numpy(), cls.to_numpy())
