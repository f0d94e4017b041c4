// Errors that are the user's to fix (bad option, bad file, unknown model). The CLI prints
// them as one line, without a stack trace; everything else is a bug and keeps its stack.
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** Shape mismatch inside an op: names the op and both shapes. */
export class ShapeError extends UserError {
  constructor(op: string, detail: string) {
    super(`${op}: ${detail}`);
    this.name = 'ShapeError';
  }
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
