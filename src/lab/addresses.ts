// The seeds' address plans: which addresses the lab gives the client, the director, the VIP and
// the real servers. Seed 001 (the default) uses 192.168.122.0/24 (client .70, director .30, VIP
// .22, real servers .45, .46, ...); seed 000 uses its own 172.20.120.0/24 (client .50, DIP .54,
// VIP .53, real servers .55 and .57). Every host sits on one /24 segment either way.

export interface AddressPlan {
  /** The plan's name as --addresses takes it. */
  name: string;
  /** The first three octets of the /24. */
  prefix: string;
  client: string;
  director: string;
  vip: string;
  /** FULLNAT's local address: on the segment, owned by no host's kernel (tvsd answers for it). */
  fullnatLocal: string;
  /** Last octets of the real servers in the seed's order; more servers continue after the last. */
  realServerOctets: readonly number[];
}

export const SEED001_ADDRESSES: AddressPlan = {
  name: "seed001",
  prefix: "192.168.122",
  client: "192.168.122.70",
  director: "192.168.122.30",
  vip: "192.168.122.22",
  fullnatLocal: "192.168.122.31",
  realServerOctets: [45, 46],
};

export const SEED000_ADDRESSES: AddressPlan = {
  name: "seed000",
  prefix: "172.20.120",
  client: "172.20.120.50",
  director: "172.20.120.54",
  vip: "172.20.120.53",
  fullnatLocal: "172.20.120.52",
  realServerOctets: [55, 57],
};

export const ADDRESS_PLANS: readonly AddressPlan[] = [SEED001_ADDRESSES, SEED000_ADDRESSES];

/** The address of real server i (0-based) in a plan. */
export function realServerAddress(plan: AddressPlan, i: number): string {
  const octets = plan.realServerOctets;
  const last = octets[octets.length - 1] ?? 44;
  const octet = i < octets.length ? (octets[i] as number) : last + (i - octets.length + 1);
  if (octet > 254) throw new RangeError(`Real server ${i + 1} has no address left in ${plan.prefix}.0/24`);
  return `${plan.prefix}.${octet}`;
}

export function addressPlan(name: string): AddressPlan {
  const plan = ADDRESS_PLANS.find((p) => p.name === name);
  if (!plan) throw new Error(`--addresses "${name}" must be one of ${ADDRESS_PLANS.map((p) => p.name).join(", ")}`);
  return plan;
}
