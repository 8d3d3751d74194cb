// `tvsd`: the director daemon. argv → run; exits here only.
//
// A SIGHUP's default action is to kill, and loading the daemon's modules takes a while: a handler
// that only remembers the signal goes in first, and main() applies it once tvsd is ready.
let sighupSeen = false;
const remember = (): void => {
  sighupSeen = true;
};
process.on("SIGHUP", remember);
const { main } = await import("../src/control/tvsd-main.ts");
process.exitCode = await main(process.argv.slice(2), {
  sighupSeen: () => sighupSeen,
  exit: (code) => process.exit(code),
});
process.off("SIGHUP", remember);
