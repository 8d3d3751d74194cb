// Packet fixtures: a description, the services and neighbours a director starts with, and steps of
// (input frame → expected verdict, drop reason and output frames). Expected frames are built by
// frame-builder.ts from scratch, so they are an oracle independent of the pipeline's in-place
// rewrites. runFixture() plays a fixture through a Pipeline over the memory PacketIo; the unit
// tests run every fixture, and lab tests can replay the same frames over real interfaces.
// The fixtures live one file per feature in fixtures/ (kit.ts has the shared network and frames).

import { arpFixtures } from "./fixtures/arp.ts";
import { drFixtures } from "./fixtures/dr.ts";
import { dropFixtures } from "./fixtures/drops.ts";
import { fullnatFixtures } from "./fixtures/fullnat.ts";
import { fwmarkFixtures } from "./fixtures/fwmark.ts";
import { icmpFixtures, icmpRelayLimitFixtures } from "./fixtures/icmp.ts";
import { icmpv6Fixtures } from "./fixtures/icmpv6.ts";
import { ipv6Fixtures } from "./fixtures/ipv6.ts";
import { ipv6FragmentFixtures } from "./fixtures/ipv6-fragments.ts";
import type { Fixture } from "./fixtures/kit.ts";
import { natFixtures } from "./fixtures/nat.ts";
import { offloadFixtures } from "./fixtures/offload.ts";
import { sctpFixtures, sctpOffloadFixtures } from "./fixtures/sctp.ts";
import { sipFixtures } from "./fixtures/sip.ts";
import { tunFixtures } from "./fixtures/tun.ts";
import { tunTypeFixtures } from "./fixtures/tun-types.ts";
import { tun6Fixtures } from "./fixtures/tun6.ts";

export {
  CLIENT,
  CLIENT_MAC,
  CLIENT6,
  DIRECTOR_IP,
  DIRECTOR_IP6,
  DIRECTOR_MAC,
  type Fixture,
  fixtureDirector,
  LOCAL,
  LOCAL6,
  OTHER_MAC,
  ROUTER,
  ROUTER6,
  RS1,
  RS1_MAC,
  RS6,
  runFixture,
  type ServiceFixture,
  type Step,
  type StepResult,
  VIP,
  VIP6,
} from "./fixtures/kit.ts";

/** Every fixture, in one order (the fuzz test draws from them); each call builds fresh frames. */
export function packetFixtures(): Fixture[] {
  return [
    ...arpFixtures(),
    ...drFixtures(),
    ...natFixtures(),
    ...tunFixtures(),
    ...fullnatFixtures(),
    ...fwmarkFixtures(),
    ...dropFixtures(),
    ...icmpFixtures(),
    ...offloadFixtures(),
    ...ipv6Fixtures(),
    ...ipv6FragmentFixtures(),
    ...icmpRelayLimitFixtures(),
    ...icmpv6Fixtures(),
    ...tun6Fixtures(),
    ...tunTypeFixtures(),
    ...sctpFixtures(),
    ...sctpOffloadFixtures(),
    ...sipFixtures(),
  ];
}
