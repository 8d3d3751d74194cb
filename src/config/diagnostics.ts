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
