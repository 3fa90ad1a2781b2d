"""What the tool reads and what it replaces on disk: nothing read that should not be, nothing lost.

Reading: a scenario names its tables by paths relative to its own folder, and they must stay inside
it (no absolute paths, no `..` or symlink leading out); only regular files are read (never a FIFO or
a device: /dev/zero would never end), and only up to a stated size. The scenario file itself is read
under the same rules.

Writing: an output replaces only what the tool wrote itself. A plan folder carries a marker file
(`PLAN_MARKER`) beside plan.json that lists every file and folder written into it; an existing `--out`
is replaced only when it is such a folder holding nothing beyond its list (a note a user added is never
deleted), or an empty one. A profile CSV is replaced only when it starts with the header the tool writes,
and never when it is an input of the scenario. Everything is written into a hidden sibling and renamed into
place; nothing of the sibling is left behind, even on failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Callable

from placement.errors import InputError

MiB = 2**20
MAX_DOCUMENT_BYTES = 16 * MiB  # a scenario file (YAML or JSON)
MAX_TABLE_BYTES = 64 * MiB     # a CSV table a scenario names (profiles, accelerators, models, pools)
PLAN_MARKER = ".placement-plan"
MARKER_TEXT = ("This folder is a plan written by `placement solve`. The next solve with the same --out\n"
               "replaces what is listed below; a file or folder put here by anyone else stops it (it is\n"
               "never deleted): keep your own notes elsewhere.\n")
MANIFEST_HEADER = "written:"   # then one relative path per line: what the next solve may replace


def _contents(folder: Path) -> set[str]:
    """Every file and folder under `folder`, as paths relative to it (the marker left out)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")} - {PLAN_MARKER}


def foreign_files(folder: Path, also_ours: tuple[str, ...] = ()) -> list[str]:
    """What a plan folder holds beyond what its marker lists (and `also_ours`, written beside the plan by
    the caller); nothing for a marker from before the list. A folder with no marker is all foreign."""
    marker = folder / PLAN_MARKER
    if not marker.is_file():
        return sorted(_contents(folder) - set(also_ours))
    written = _written(marker)
    return sorted(_contents(folder) - written - set(also_ours)) if written is not None else []


def _written(marker: Path) -> set[str] | None:
    """The paths a marker lists; None for a marker from before the list (its folder is replaced as a whole)."""
    lines = marker.read_text(errors="replace").splitlines()
    if MANIFEST_HEADER not in lines:
        return None
    return {line for line in lines[lines.index(MANIFEST_HEADER) + 1:] if line}


# --------------------------------------------------------------------------------------------------
# reading


def read_text_bounded(path: Path, label: str, limit: int, what: str) -> str:
    """The text of a regular file of at most `limit` bytes, or InputError naming the file.

    Opened non-blocking so a FIFO cannot hang the open; checked on the open descriptor, so what is
    read is what was checked; and never more than `limit` + 1 bytes are read, whatever fstat said.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError.single(label, "", f"{what} not found; check the path") from None
    except OSError as exc:
        raise InputError.single(label, "", f"{what} cannot be opened ({exc.strerror})") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket or special file")
        raise InputError.single(label, "", f"is {kind}, not a regular file; give the {what} itself")
    with os.fdopen(descriptor, "rb") as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise InputError.single(label, "", f"{what} cannot be read ({exc.strerror})") from None
    if len(data) > limit:
        raise InputError.single(label, "", f"{what} is larger than {limit // MiB} MiB, the limit; "
                                           "split it or keep it under the limit")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError.single(label, "", f"{what} cannot be read as UTF-8 text (byte {exc.start}); "
                                           "save it as UTF-8") from None


def table_path(scenario_path: Path, reference: str, field: str) -> Path:
    """Where a table named in a scenario lives: inside the scenario's folder, symlinks resolved.

    Raises InputError (naming the scenario file and the field) for an absolute path or a path that
    leads out of the folder, before anything is opened.
    """
    label = str(scenario_path)
    if os.path.isabs(reference):
        raise InputError.single(label, field, f"{reference!r} is an absolute path; tables must sit in the "
                                              "scenario's folder: copy it there and give its relative path")
    folder = Path(scenario_path).absolute().parent.resolve()
    resolved = (folder / reference).resolve()
    if not resolved.is_relative_to(folder):
        raise InputError.single(label, field, f"{reference!r} resolves outside the scenario's folder {folder}; "
                                              "copy the table into that folder and give its relative path")
    return resolved


# --------------------------------------------------------------------------------------------------
# writing


def _cannot_write(path: Path, exc: OSError) -> InputError:
    reason = exc.strerror or str(exc)
    return InputError.single(str(path), "--out", f"cannot write here ({reason}); choose a --out in a folder "
                                                 "you can write")


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")


def check_replaceable_folder(out_dir: Path, inputs: list[Path] = ()) -> None:
    """Refuse (InputError, nothing touched) unless `out_dir` is absent, empty, or a plan folder we wrote."""
    label = str(out_dir)
    fix = ("choose another --out (placement replaces only an empty folder or a plan folder it wrote; a plan "
           "folder from before the marker existed must be removed by hand)")
    if out_dir.is_symlink():
        raise InputError.single(label, "--out", f"is a symbolic link; give the folder itself, or {fix}")
    if not out_dir.exists():
        ancestor = next(p for p in out_dir.absolute().parents if p.exists())
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise InputError.single(label, "--out", f"cannot be created: {ancestor} is not a folder you can write; "
                                                    "choose a --out in a folder you can write")
        return
    if not out_dir.is_dir():
        raise InputError.single(label, "--out", f"is a file, not a plan folder; {fix}")
    if not any(out_dir.iterdir()):
        return
    if not ((out_dir / PLAN_MARKER).is_file() and (out_dir / "plan.json").is_file()):
        raise InputError.single(label, "--out", f"exists and is not a plan folder (no {PLAN_MARKER} beside "
                                                f"plan.json), so it is left as it is; {fix}")
    foreign = foreign_files(out_dir)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise InputError.single(label, "--out", f"is a plan folder, but holds what placement did not write "
                                                f"({shown}), so it is left as it is; move those out, or {fix}")
    resolved = out_dir.resolve()
    for path in inputs:
        if Path(path).absolute().resolve().is_relative_to(resolved):
            raise InputError.single(label, "--out", f"holds an input of this solve ({path}); {fix}")


def replace_folder(out_dir: Path, write: Callable[[Path], None], inputs: list[Path] = ()) -> Path:
    """Fill a new hidden sibling folder with `write(folder)` and swap it in for `out_dir`.

    A reader sees the old folder or the new one, never a mix; on any failure the old one stays and
    the sibling is removed. The new folder follows the umask (os.mkdir with 0o777), unlike mkdtemp.
    """
    out_dir = Path(out_dir)
    check_replaceable_folder(out_dir, inputs)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = _new_folder(out_dir, ".tmp")
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None
    try:
        write(staging)
        manifest = [MARKER_TEXT, MANIFEST_HEADER, *sorted(_contents(staging))]
        (staging / PLAN_MARKER).write_text("\n".join(manifest) + "\n")
        _swap(staging, out_dir)
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None
    finally:
        _remove(staging)
    return out_dir


def _new_folder(near: Path, suffix: str) -> Path:
    while True:
        candidate = _sibling(near, suffix)
        try:
            os.mkdir(candidate, 0o777)
            return candidate
        except FileExistsError:
            continue


def _swap(staging: Path, out_dir: Path) -> None:
    """rename() is atomic for a new name; an existing folder is moved aside first, then removed."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    old = _sibling(out_dir, ".old")
    os.rename(out_dir, old)
    try:
        os.rename(staging, out_dir)
    except OSError:
        os.rename(old, out_dir)
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def replace_file(path: Path, text: str, inputs: list[Path] = ()) -> Path:
    """Write `text` to `path` atomically, replacing only a file that starts with the same header line.

    The header (first line of `text`) is how the tool recognises a table it wrote; a file the
    scenario reads is never replaced, whatever its header.
    """
    path = Path(path)
    label = str(path)
    fix = "choose another --out (placement replaces only a table it wrote)"
    if path.is_symlink():
        raise InputError.single(label, "--out", f"is a symbolic link; give the file itself, or {fix}")
    if path.exists():
        if path.is_dir():
            raise InputError.single(label, "--out", f"is a folder; give a file name, or {fix}")
        if not path.is_file():
            raise InputError.single(label, "--out", f"is not a regular file; {fix}")
        resolved = path.resolve()
        if any(Path(p).absolute().resolve() == resolved for p in inputs):
            raise InputError.single(label, "--out", f"is an input of this scenario; {fix}")
        header = text.split("\n", 1)[0]
        try:
            with path.open("rb") as handle:
                first = handle.read(len(header.encode()) + 1).decode("utf-8", "replace")
        except OSError as exc:
            raise _cannot_write(path, exc) from None
        if first not in (header, header + "\n"):
            raise InputError.single(label, "--out", f"exists and is not a table written by placement (its first "
                                                    f"line differs), so it is left as it is; {fix}")
    staging = _sibling(path, ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(staging, path)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    finally:
        _remove(staging)
    return path
