// Userspace IPIP decapsulation for TUN-mode real servers on kernels without the ipip module:
// receive IP-in-IP packets (protocol 4) on a raw socket, strip the outer header, and write the
// inner packet into a TUN device so the kernel delivers it to the VIP on lo. Requires the native
// addon (raw IP sockets and TUN devices).

export async function runDecapsulator(_vip: string, _device: string): Promise<number> {
  process.stderr.write(
    "tvs realserver decap: the native addon's raw IP and TUN support is not available in this build\n",
  );
  return 1;
}
