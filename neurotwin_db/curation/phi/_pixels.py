"""Which DICOM files may carry identifiers burned into their pixels."""

from __future__ import annotations

from typing import Any

# Modalities whose images commonly carry burned-in text (DICOM PS3.15 E.1 notes
# burned-in annotation as a risk; ultrasound, secondary capture and photographs of
# documents or patients are the usual sources).
# Radiographs (CR, DX, MG, XA) can carry burned-in markers too, but rarely names: they pass
# on their header (BurnedInAnnotation), so a dataset of radiographs is not all quarantined.
PIXEL_RISK_MODALITIES = frozenset({"US", "IVUS", "SC", "OT", "XC", "ES", "GM", "SM", "DOC",
                                   "VL"})
# SOP classes that are screen or document captures whatever the Modality says.
PIXEL_RISK_SOP_KEYWORDS = ("Secondary Capture", "Ultrasound", "Video", "Photographic",
                           "Encapsulated PDF")


def pixel_risk(ds: Any) -> str | None:
    """Why the pixels of ``ds`` (a pydicom Dataset) may show identifiers, or None."""
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if burned == "YES":
        return "BurnedInAnnotation is YES"
    if "PixelData" not in ds and "FloatPixelData" not in ds and \
            "DoubleFloatPixelData" not in ds and "EncapsulatedDocument" not in ds:
        return None
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality in PIXEL_RISK_MODALITIES and burned != "NO":
        return f"modality {modality} often has burned-in text (BurnedInAnnotation not NO)"
    sop = ds.get("SOPClassUID")
    name = getattr(sop, "name", "") if sop is not None else ""
    if any(word in name for word in PIXEL_RISK_SOP_KEYWORDS) and burned != "NO":
        return f"SOP class {name} is a capture that may show burned-in text"
    return None
