// Configuration diagnostics: every problem found while reading a keepalived.conf or ldirectord.cf,
// with the file, line and column it points at. Errors make a configuration unusable; warnings
// (unknown keywords, values keepalived would silently correct) do not.

export type Severity = "error" | "warning";

export interface Diagnostic {
  severity: Severity;
  file: string;
  /** 1-based line. */
  line: number;
  /** 1-based column (characters, not bytes). */
  column: number;
  message: string;
}

/** A place in a source file. */
export interface SourcePos {
  file: string;
  line: number;
  column: number;
}

/** Collects diagnostics in the order they are found. */
export class Diagnostics {
  readonly list: Diagnostic[] = [];

  error(at: SourcePos, message: string): void {
    this.list.push({ severity: "error", file: at.file, line: at.line, column: at.column, message });
  }

  warning(at: SourcePos, message: string): void {
    this.list.push({ severity: "warning", file: at.file, line: at.line, column: at.column, message });
  }

  get hasErrors(): boolean {
    return this.list.some((d) => d.severity === "error");
  }

  get errors(): Diagnostic[] {
    return this.list.filter((d) => d.severity === "error");
  }

  get warnings(): Diagnostic[] {
    return this.list.filter((d) => d.severity === "warning");
  }
}

/** "FILE:LINE:COL: error: message", the form compilers and `keepalived -t` users expect. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.severity}: ${d.message}`;
}

/**
 * A word from a file as a message may quote it: control characters escaped and at most `max`
 * characters, so a binary or hostile file cannot write its contents (or a terminal escape) into
 * the log through a diagnostic.
 */
export function quotable(text: string, max = 48): string {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text;
  return cut.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
