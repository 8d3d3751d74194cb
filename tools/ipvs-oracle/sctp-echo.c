/*
 * sctp-echo: the smallest SCTP endpoints the oracle VM needs to put a real association through
 * tvsd (the host kernel has no SCTP; the guest's has). One-to-one style sockets (SOCK_STREAM,
 * IPPROTO_SCTP), so no lksctp library: built static by tools/ipvs-oracle/build.sh.
 *
 *   sctp-echo server ADDR PORT NAME    accept associations forever; answer each message with
 *                                      "NAME:" and the message, then wait for the peer to close
 *   sctp-echo client SRC DST PORT MSG  associate from SRC to DST:PORT, send MSG, print the answer,
 *                                      close (SHUTDOWN); exit 0 on an answer, 1 otherwise
 *
 * Binding a specific address keeps the association single-homed (INIT / INIT ACK list only it).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int addr_of(const char *a, int port, struct sockaddr_in *sa) {
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)port);
	return inet_pton(AF_INET, a, &sa->sin_addr) == 1 ? 0 : -1;
}

static int serve(const char *addr, int port, const char *name) {
	struct sockaddr_in sa;
	int one = 1;
	int s = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
	if (s < 0 || addr_of(addr, port, &sa) < 0) { perror("sctp-echo server: socket"); return 1; }
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 16) < 0) { perror("sctp-echo server: bind"); return 1; }
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		char in[1024], out[1100];
		int c = accept(s, NULL, NULL);
		if (c < 0) continue;
		ssize_t n = read(c, in, sizeof in - 1);
		if (n > 0) {
			in[n] = 0;
			int m = snprintf(out, sizeof out, "%s:%s", name, in);
			if (write(c, out, (size_t)m) < 0) perror("sctp-echo server: write");
			/* Let the client close first (its SHUTDOWN), as the oracle's state check expects. */
			while (read(c, in, sizeof in) > 0) {}
		}
		close(c);
	}
}

static int client(const char *src, const char *dst, int port, const char *msg) {
	struct sockaddr_in from, to;
	struct timeval tv = {5, 0};
	char buf[1100];
	int s = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
	if (s < 0 || addr_of(src, 0, &from) < 0 || addr_of(dst, port, &to) < 0) { perror("sctp-echo client: socket"); return 1; }
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	alarm(15);
	if (bind(s, (struct sockaddr *)&from, sizeof from) < 0) { perror("sctp-echo client: bind"); return 1; }
	if (connect(s, (struct sockaddr *)&to, sizeof to) < 0) { perror("sctp-echo client: connect"); return 1; }
	if (write(s, msg, strlen(msg)) < 0) { perror("sctp-echo client: write"); return 1; }
	ssize_t n = read(s, buf, sizeof buf - 1);
	if (n <= 0) { perror("sctp-echo client: read"); return 1; }
	buf[n] = 0;
	printf("%s\n", buf);
	close(s);
	/* close() starts the SHUTDOWN; give it a moment to complete before the process goes. */
	usleep(300000);
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 5 && strcmp(argv[1], "server") == 0) return serve(argv[2], atoi(argv[3]), argv[4]);
	if (argc == 6 && strcmp(argv[1], "client") == 0) return client(argv[2], argv[3], atoi(argv[4]), argv[5]);
	fprintf(stderr, "usage: sctp-echo server ADDR PORT NAME | sctp-echo client SRC DST PORT MSG\n");
	return 2;
}
