"""``--provider local`` options of the ``voxsync`` command (light imports only)."""

from __future__ import annotations

import argparse
import re
from typing import Any, Dict

__all__ = ["add_cli_arguments", "options_from_args"]


def add_cli_arguments(group: argparse._ArgumentGroup) -> None:
    """Add the offline recognizer's options to ``group``."""
    group.add_argument(
        "--model",
        dest="local_hmm",
        metavar="DIR",
        help="pocketsphinx acoustic model directory (default: the bundled en-us model)",
    )
    group.add_argument(
        "--lm", dest="local_lm", metavar="FILE", help="n-gram language model (ARPA or binary)"
    )
    group.add_argument("--dict", dest="local_dict", metavar="FILE", help="pronunciation dictionary")
    search = group.add_mutually_exclusive_group()
    search.add_argument(
        "--keyphrase",
        dest="local_keyphrase",
        metavar="TEXT",
        help="listen only for this phrase (keyword spotting)",
    )
    search.add_argument(
        "--grammar",
        dest="local_grammar",
        metavar="JSGF|FILE",
        help="recognise only the sentences of a JSGF grammar (text or .gram file)",
    )
    search.add_argument(
        "--vocabulary",
        dest="local_vocabulary",
        metavar="WORDS",
        help="recognise only these words (separated by commas or spaces)",
    )
    group.add_argument(
        "--kws-threshold",
        dest="local_kws_threshold",
        type=float,
        metavar="X",
        help="keyphrase detection threshold (default 1e-20; lower: fewer false alarms)",
    )
    group.add_argument(
        "--silence-ms",
        dest="local_silence_ms",
        type=int,
        metavar="MS",
        help="silence that ends an utterance, in milliseconds (default 500)",
    )


def options_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments of :func:`voxsync.local.create_connection` from parsed options."""
    options: Dict[str, Any] = {}
    for attr, key in (
        ("local_hmm", "hmm"),
        ("local_lm", "lm"),
        ("local_dict", "dict"),
        ("local_keyphrase", "keyphrase"),
        ("local_grammar", "grammar"),
        ("local_kws_threshold", "kws_threshold"),
        ("local_silence_ms", "silence_ms"),
    ):
        value = getattr(args, attr, None)
        if value is not None:
            options[key] = value
    vocabulary = getattr(args, "local_vocabulary", None)
    if vocabulary:
        options["vocabulary"] = [w for w in re.split(r"[,\s]+", vocabulary) if w]
    return options
