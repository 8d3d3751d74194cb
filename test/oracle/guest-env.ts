// The guest environment every oracle comparison starts from: the same host names and service names
// as tvsadm's golden-test resolver (test/golden/tvsadm/harness.ts — keep the two tables equal), a
// veth pair eth0/eth1 so sync daemons have multicast interfaces, and an empty IPVS table with the
// default timeouts.

import { shq } from "./vm.ts";

export const GUEST_SERVICES = `ftp 21/tcp
ssh 22/tcp
domain 53/tcp
domain 53/udp
http 80/tcp www
https 443/tcp
https 443/udp
ntp 123/udp
`;

export const GUEST_HOSTS = `127.0.0.1 localhost
10.0.0.100 www.example.com
192.168.10.1 rs1.example.com
192.168.10.2 rs2.example.com
2001:db8::100 www6.example.com
172.16.0.1 a-host-name-long-enough-to-be-cut.example.com
`;

/** A shell script that prepares a freshly booted guest (idempotent). */
export function guestSetupScript(): string {
  return [
    `printf '%s' ${shq(GUEST_HOSTS)} > /etc/hosts`,
    `printf '%s' ${shq(GUEST_SERVICES)} > /etc/services`,
    "printf 'hosts: files\\nservices: files\\n' > /etc/nsswitch.conf",
    "[ -e /sys/class/net/eth0 ] || { modprobe veth && /sbin/ip link add eth0 type veth peer name eth1; }",
    "/sbin/ip link set eth0 up; /sbin/ip link set eth1 up",
    "ln -sf /sbin/ipvsadm /sbin/tvsadm",
    "true",
  ].join("\n");
}

/** Restores an empty table: no services, no sync daemons, default timeouts. */
export const GUEST_RESET =
  "ipvsadm -C; ipvsadm --stop-daemon master 2>/dev/null; ipvsadm --stop-daemon backup 2>/dev/null; ipvsadm --set 900 120 300; true";
