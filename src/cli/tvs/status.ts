// Placeholder subcommand; replaced by its implementation.
export async function run(_argv: string[]): Promise<number> {
  process.stderr.write("not built yet\n");
  return 1;
}
