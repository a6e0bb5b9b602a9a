"""Make NLTK's WordNet (needed by METEOR) available offline from Debian's ``wordnet-base``
and ``wordnet-sense-index``.

NLTK's reader wants ``corpora/wordnet/{data,index}.*``, ``index.sense`` and a ``lexnames`` file.
Debian installs the WordNet 3.0 database under ``/usr/share/wordnet`` without ``lexnames``; its content
is the fixed table of 45 lexicographer files (lexnames(5WN)), written here. Files are copied, not
symlinked (NLTK rejects symlinked corpora in zip-less mode on some versions).

Usage: ``python -m speechrl.setup_nltk DEST``  (idempotent).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DEBIAN_WORDNET = Path("/usr/share/wordnet")
LEXNAMES = [
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
]
_SYNTACTIC = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def install(dest: Path) -> Path:
    """Copy WordNet into ``dest/corpora/wordnet`` and return that folder."""
    target = dest / "corpora" / "wordnet"
    if all((target / f).exists() for f in ("lexnames", "data.noun", "index.sense")):
        return target
    if not all((DEBIAN_WORDNET / f).exists() for f in ("data.noun", "index.sense")):
        raise SystemExit(
            f"WordNet not found at {DEBIAN_WORDNET}: install Debian's 'wordnet-base' and "
            "'wordnet-sense-index' (scripts/setup.sh does) to enable METEOR."
        )
    tmp = target.with_name("wordnet.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in DEBIAN_WORDNET.iterdir():
        if f.is_file():
            shutil.copyfile(f, tmp / f.name)
    lines = [f"{i:02d}\t{name}\t{_SYNTACTIC[name.split('.')[0]]}" for i, name in enumerate(LEXNAMES)]
    (tmp / "lexnames").write_text("\n".join(lines) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


if __name__ == "__main__":
    print(f"[setup] WordNet for NLTK at {install(Path(sys.argv[1]))}")
