// `tvsd`: the director daemon. argv → run; exits here only.
//
// A SIGHUP's default action is to kill, and loading the daemon's modules takes a while: a handler
// that only remembers the signal goes in first, and main() applies it once tvsd is ready.
//
// The daemon (control) never imports the CLI: the --demo banner's table listing and the
// --state-file's ipvsadm -S text are composed here, at the top, from tvsadm's own code.
let sighupSeen = false;
const remember = (): void => {
  sighupSeen = true;
};
process.on("SIGHUP", remember);
const { main } = await import("../src/control/tvsd-main.ts");
const { formatStateFile } = await import("../src/cli/tvsadm/format.ts");
process.exitCode = await main(process.argv.slice(2), {
  sighupSeen: () => sighupSeen,
  exit: (code) => process.exit(code),
  formatStateFile,
  listDemoTable: async (socketPath) => {
    const { main: tvsadm } = await import("../src/cli/tvsadm/main.ts");
    return tvsadm(["--socket", socketPath, "-L", "-n"]);
  },
});
process.off("SIGHUP", remember);
