"""One row per path or leg of a benchmark run, shared by report.py and pgbench_report.py: read from
its result folder ("<order>-<name>", with optional notes and unavailable files), written as a line
of the markdown table and a details line under it."""


def load_rows(results):
    """A dict per result folder, in run order: its name, its notes, and why it was unavailable if
    it was. The caller adds what its own result files hold; the folder is under "folder"."""
    rows = []
    for folder in sorted((p for p in results.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("-", 1)[0])):
        row = {"name": folder.name.split("-", 1)[1], "folder": folder, "notes": []}
        if (folder / "notes").exists():
            row["notes"] = (folder / "notes").read_text().splitlines()
        if (folder / "unavailable").exists():
            row["unavailable"] = (folder / "unavailable").read_text().strip()
        rows.append(row)
    return rows


def ratio(value, base):
    return f"{value / base:.2f}×" if value is not None and base else "—"


def cell(text):
    """Text that may contain a pipe, made safe for a table cell."""
    return text.replace("|", "\\|")


def table_lines(rows, labels, columns, cells):
    """A markdown table line per row: "not available: why" and dashes to fill the COLUMNS for a row
    that could not be measured, otherwise the row's label followed by cells(row)."""
    lines = []
    for row in rows:
        label = labels.get(row["name"], row["name"])
        if "unavailable" in row:
            values = [label, f"not available: {cell(row['unavailable'])}"] + ["—"] * (columns - 2)
        else:
            values = [label] + cells(row)
        lines.append("| " + " | ".join(values) + " |")
    return lines


def details_lines(rows, labels, details):
    """A "- label: a; b" line per row that has notes or details(row) to tell, notes first."""
    lines = []
    for row in rows:
        told = list(row["notes"]) + details(row)
        if told:
            lines.append(f"- {labels.get(row['name'], row['name'])}: " + "; ".join(told))
    return lines
