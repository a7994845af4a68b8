/* Preloaded into Janus by bench/sfu.sh, nowhere else.
 *
 * Janus gathers ICE candidates on every interface except loopback ones (its ice.c skips
 * IFF_LOOPBACK even when ice_enforce_list names "lo"), so on a benchmark machine it would
 * take media on the machine's public address. The benchmark's traffic must stay on
 * 127.0.0.1: this getifaddrs() reports 127.0.0.1 as an ordinary interface that is up, and
 * every other address as down, so Janus (and libnice) gather 127.0.0.1 only. Entries are
 * changed in place, never unlinked, so freeifaddrs() still frees glibc's one block. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **);
    if (!real) {
        real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
        if (!real) return -1;
    }
    int rc = real(ifap);
    if (rc != 0) return rc;
    for (struct ifaddrs *ifa = *ifap; ifa; ifa = ifa->ifa_next) {
        int v4_loopback = ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET &&
            ((struct sockaddr_in *)ifa->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
        if (v4_loopback)
            ifa->ifa_flags = (ifa->ifa_flags & ~IFF_LOOPBACK) | IFF_UP | IFF_RUNNING;
        else
            ifa->ifa_flags &= ~(IFF_UP | IFF_RUNNING);
    }
    return 0;
}
