// A network link between the oracle VM and network namespaces on the host: a lab switch (bridge br0
// in its own namespace, src/lab/netns.ts) with a tap device enslaved to it; qemu runs in the switch
// namespace and gives the tap to the guest as its virtio-net eth0 (KernelVm.boot's `link`). Host
// namespaces added with lab.addHost() share that L2 segment with the guest, so real TCP and the
// sync daemons' multicast cross the guest's kernel IPVS. Everything goes with lab.destroy().

import { ipIn } from "../../src/lab/exec.ts";
import { Lab } from "../../src/lab/netns.ts";

export interface HostLink {
  lab: Lab;
  /** Where qemu must run and the tap it opens (pass to KernelVm.boot({ link })). */
  link: { netns: string; tap: string };
}

/** Creates the switch namespace (unique prefix) and a persistent tap on its bridge. */
export async function createHostLink(prefix?: string): Promise<HostLink> {
  const lab = new Lab(prefix);
  try {
    await lab.createSwitch();
    const tap = `${lab.prefix}tap`;
    await ipIn(lab.switchNs, "tuntap", "add", "dev", tap, "mode", "tap");
    await ipIn(lab.switchNs, "link", "set", tap, "master", "br0");
    await ipIn(lab.switchNs, "link", "set", tap, "up");
    return { lab, link: { netns: lab.switchNs, tap } };
  } catch (e) {
    await lab.destroy();
    throw e;
  }
}
