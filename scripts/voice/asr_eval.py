"""Recognition quality of a Vosk model on a folder of recordings: character error rate and real-time factor.

    python scripts/voice/asr_eval.py FOLDER [--model PATH] [--rate 8000] [--phrases FILE] [--json out.json] [--per-file]

FOLDER holds the recordings (`*.wav`, 16-bit PCM, any sample rate; stereo is mixed down) and their transcripts, either one
`name.txt` beside each `name.wav` or one `transcripts.tsv` (`name.wav<TAB>text` per line). Each recording is
resampled to --rate (8000: what the phone delivers) and recognised free-form, as the gateway does for an open
question (or, with --phrases, constrained to a phrase list as for menu words and 是/不是, with the silence
before and after the speech cut as the gateway's end-pointer does). Printed:
  - CER: character edit distance ÷ reference characters, over the whole folder (and per file with --per-file);
    punctuation and spaces do not count, so Chinese is scored by characters whatever the model's word spacing;
  - RTF: recognition CPU seconds ÷ audio seconds (one core; below 1 is faster than real time), and the wall RTF;
  - the model's load time.
The model is --model, else VOSK_MODEL_PATH, else the first Mandarin model in the standard places
(voice.engines.recognition.resolve_model_path). A folder without a readable recording or transcript is refused with one
sentence, never a traceback. Exit status 0 when every recording was scored, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import unicodedata
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from voice.audio import float_to_pcm16, level_dbfs, read_wav, resample  # noqa: E402
from voice.engines.recognition import ModelMissing, VoskModel, VoskRecognizer, resolve_model_path  # noqa: E402


class BadInput(ValueError):
    """A recording or transcript that cannot be scored; the message says which and why."""


def normalise(text: str) -> str:
    """The characters that count: no spaces, no punctuation or symbols, full-width folded, lower case."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] not in "PSZC")


def edit_distance(ref: str, hyp: str) -> int:
    """Levenshtein distance between two strings (substitutions, insertions and deletions cost 1)."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def read_pcm(path: Path, rate: int) -> bytes:
    """16-bit PCM at `rate` Hz from a WAV file (stereo mixed down, other rates resampled)."""
    try:
        samples, source_rate = read_wav(path)
    except (wave.Error, EOFError, OSError, ValueError) as exc:
        raise BadInput(f"{path.name}: not a readable 16-bit PCM WAV file ({exc})") from exc
    if len(samples) == 0:
        raise BadInput(f"{path.name}: no audio")
    return float_to_pcm16(resample(samples, source_rate, rate))


def trim_silence(pcm: bytes, rate: int, threshold_dbfs: float = -45.0, margin_ms: int = 100) -> bytes:
    """Leading and trailing silence cut, as the gateway's end-pointer hears an utterance: a recogniser held
    to a phrase list has no garbage word and would otherwise hear a phrase in the silence."""
    frame = rate // 50 * 2  # 20 ms
    voiced = [i for i in range(0, len(pcm), frame) if level_dbfs(pcm[i : i + frame]) > threshold_dbfs]
    if not voiced:
        return pcm
    margin = rate * margin_ms // 1000 * 2
    return pcm[max(0, voiced[0] - margin) : voiced[-1] + frame + margin]


def transcripts(folder: Path) -> dict[str, str]:
    """Recording name → reference text, from transcripts.tsv or the .txt beside each .wav."""
    if not folder.is_dir():
        raise BadInput(f"{folder} is not a folder")
    table = folder / "transcripts.tsv"
    refs: dict[str, str] = {}
    if table.is_file():
        for n, line in enumerate(table.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            name, sep, text = line.partition("\t")
            if not sep:
                raise BadInput(f"transcripts.tsv line {n}: expected 'name.wav<TAB>text'")
            refs[Path(name.strip()).name] = text.strip()
    for wav in sorted(folder.glob("*.wav")):
        txt = wav.with_suffix(".txt")
        if wav.name not in refs and txt.is_file():
            refs[wav.name] = txt.read_text(encoding="utf-8").strip()
    missing = [w.name for w in sorted(folder.glob("*.wav")) if w.name not in refs]
    if missing:
        raise BadInput(f"no transcript for {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
    if not refs:
        raise BadInput(f"no .wav recordings with transcripts in {folder}")
    absent = [name for name in refs if not (folder / name).is_file()]
    if absent:
        raise BadInput(f"transcripts.tsv names recordings that are not in the folder: {', '.join(absent[:5])}")
    return refs


def phrase_list(path: Path) -> tuple[str, ...]:
    """The phrases of a phrase-list file, one per line, blank lines skipped."""
    try:
        phrases = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the phrase list ({exc})") from exc
    if not phrases:
        raise BadInput(f"{path}: the phrase list is empty")
    return phrases


@dataclass
class Scored:
    """One recording's result."""

    name: str
    reference: str
    heard: str
    errors: int
    characters: int
    audio_s: float
    cpu_s: float


def recognise(model: VoskModel, pcm: bytes, rate: int, phrases: tuple[str, ...] = ()) -> tuple[str, float]:
    """Recognition of one recording in 0.1 s chunks, as the gateway feeds it; (text, CPU seconds).
    Free-form, or constrained to a phrase list as the gateway listens for menu words and 是/不是."""
    started = time.process_time()
    grammar = model.grammar_json(phrases) if phrases else None
    recognizer = VoskRecognizer(model._model, grammar, sample_rate=rate)  # noqa: SLF001 (the shared loaded model)
    step = rate // 10 * 2
    for i in range(0, len(pcm), step):
        recognizer.accept(pcm[i : i + step])
    text, _ = recognizer.finish()
    return text, time.process_time() - started


def evaluate(folder: Path, model: VoskModel, rate: int = 8000, phrases: tuple[str, ...] = ()) -> list[Scored]:
    """Every recording of the folder recognised and scored against its transcript."""
    results = []
    for name, reference in sorted(transcripts(folder).items()):
        pcm = read_pcm(folder / name, rate)
        if phrases:
            pcm = trim_silence(pcm, rate)
        heard, cpu = recognise(model, pcm, rate, phrases)
        ref, hyp = normalise(reference), normalise(heard)
        results.append(Scored(name, reference, heard, edit_distance(ref, hyp), len(ref), len(pcm) / 2 / rate, cpu))
    return results


def summary(results: list[Scored], wall_s: float) -> dict[str, float]:
    """Folder totals: CER over all characters, CPU and wall real-time factors."""
    characters = sum(r.characters for r in results)
    audio = sum(r.audio_s for r in results)
    return {"recordings": len(results), "characters": characters, "audio_s": round(audio, 2),
            "cer": round(sum(r.errors for r in results) / characters, 4) if characters else 0.0,
            "rtf_cpu": round(sum(r.cpu_s for r in results) / audio, 4) if audio else 0.0,
            "rtf_wall": round(wall_s / audio, 4) if audio else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--model", default="", help="an unpacked Vosk model folder (default: VOSK_MODEL_PATH, then the standard places)")
    ap.add_argument("--rate", type=int, default=8000, choices=(8000, 16000), help="recognition sample rate")
    ap.add_argument("--phrases", type=Path, help="a phrase list (one per line): recognise constrained to it, "
                    "as the gateway does for menus and yes/no, instead of free-form")
    ap.add_argument("--per-file", action="store_true", help="print every recording's result")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)
    try:
        refs = transcripts(args.folder)
        phrases = phrase_list(args.phrases) if args.phrases else ()
        model_path = resolve_model_path(args.model or os.environ.get("VOSK_MODEL_PATH", ""))
    except (BadInput, ModelMissing) as exc:
        print(f"asr_eval: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    model = VoskModel(model_path)
    load_s = time.perf_counter() - started
    mode = f"constrained to {len(phrases)} phrases" if phrases else "free-form"
    print(f"model {model_path.name}: loaded in {load_s:.1f} s; {len(refs)} recordings at {args.rate} Hz, {mode}")
    started = time.perf_counter()
    try:
        results = evaluate(args.folder, model, args.rate, phrases)
    except BadInput as exc:
        print(f"asr_eval: {exc}", file=sys.stderr)
        return 2
    totals = summary(results, time.perf_counter() - started)
    if args.per_file:
        for r in results:
            cer = r.errors / r.characters if r.characters else 0.0
            print(f"  {r.name}: CER {cer:.3f}  heard «{r.heard}»  reference «{r.reference}»")
    print(f"CER {totals['cer']:.3f} over {totals['characters']} characters; "
          f"RTF {totals['rtf_cpu']:.3f} (CPU) / {totals['rtf_wall']:.3f} (wall) over {totals['audio_s']:.1f} s of audio")
    if args.json:
        args.json.write_text(json.dumps({"model": model_path.name, "load_s": round(load_s, 2), **totals,
                                         "files": [asdict(r) for r in results]}, ensure_ascii=False, indent=1),
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
