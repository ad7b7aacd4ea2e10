"""What counts as patient identity on screen, for `Session.phi_hidden`.

Presenter mode (and anyone who asks) hides it: the patient's names, IDs, birth date, age and
address (the whole Patient group 0010), the people and the institution of the study, the
accession number and study ID, and every date and time (a date with the modality and the
hospital is enough to find a patient). The rule is by tag group, VR and keyword so that a
private or unusual element of those kinds is hidden too.
"""

from __future__ import annotations

__all__ = ["is_identifying_tag"]

_HIDDEN_VRS = frozenset({"PN", "DA", "DT", "TM"})
_HIDDEN_TAGS = frozenset(
    {
        "(0008,0050)",  # Accession Number
        "(0008,0080)",  # Institution Name
        "(0008,0081)",  # Institution Address
        "(0008,1010)",  # Station Name
        "(0008,1040)",  # Institutional Department Name
        "(0020,0010)",  # Study ID
        "(0032,1060)",  # Requested Procedure Description can name the patient's history
        "(0040,0275)",  # Request Attributes Sequence
    }
)


def is_identifying_tag(tag: str, vr: str) -> bool:
    """Whether a header element (tag written "(gggg,eeee)") is hidden with patient identity."""
    tag = tag.strip().upper()
    return tag.startswith("(0010,") or tag in _HIDDEN_TAGS or vr.strip().upper() in _HIDDEN_VRS
