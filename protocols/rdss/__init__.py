"""BeiDou terminal protocol: the NMEA-style RDSS 2.1 and BDS-3 sentences and their text encodings.

Pure like the rest of ``protocols``: no I/O. ``decode_sentence`` types the sentences
listed in ``protocols/RDSS.md`` and keeps any other well-formed one as a
:class:`Generic`; ``encode_sentence`` writes any of them back with a valid checksum.
"""

from protocols.rdss.base import Generic, Sentence
from protocols.rdss.bds3 import Fki3, FkiReason, Icp, Icr, Pwi, Tci, Tcq
from protocols.rdss.codec import decode_bytes, decode_sentence, encode_sentence, to_wire
from protocols.rdss.mapping import from_dict, to_dict
from protocols.rdss.text import Bds3Encoding, Form, TextMode
from protocols.rdss.v21 import Bsi, CommType, Fki, Ica, Ici, Rmo, RmoMode, Suppression, Txa, Txr

__all__ = [
    "decode_sentence",
    "encode_sentence",
    "decode_bytes",
    "to_wire",
    "from_dict",
    "to_dict",
    "Sentence",
    "Generic",
    "Txa",
    "Txr",
    "Fki",
    "Ica",
    "Ici",
    "Rmo",
    "Bsi",
    "Tcq",
    "Fki3",
    "Tci",
    "Icr",
    "Icp",
    "Pwi",
    "CommType",
    "Suppression",
    "RmoMode",
    "FkiReason",
    "TextMode",
    "Bds3Encoding",
    "Form",
]
