// Placeholder entry point; replaced by the command's implementation.
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write("not built yet\n");
  return 1;
}
