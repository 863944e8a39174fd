/*
 * botunet._meter: the per-packet path of the sessions stage, in C.
 *
 * Python reads a capture in chunks and hands the bytes to a Meter. The Meter frames
 * pcap / pcapng records (keeping a partial record across chunks), decodes the link,
 * IP and transport headers, and keeps a table of live bidirectional sessions with
 * idle / active timeouts and optional TCP close. Python only sees one object per
 * finished session (or per "ready" event), never one per packet.
 *
 * Every read of packet or file bytes is checked against the bytes actually present.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <structmember.h>

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Limits                                                                                */
/* ------------------------------------------------------------------------------------ */

/* Largest captured length accepted in a pcap record (libpcap's own maximum snaplen). */
#define PCAP_MAX_RECORD 262144u
/* Largest pcapng block accepted (Wireshark refuses larger blocks too). */
#define PCAPNG_MAX_BLOCK (16u * 1024u * 1024u)
/* IPv6 extension headers walked before giving up on a packet. */
#define MAX_IPV6_EXT 16
/* Tunnels unwrapped inside one packet. */
#define MAX_TUNNEL_DEPTH 4
/* Link types marker for a pcapng packet that names an interface never described. */
#define LINK_UNKNOWN_IFACE 0xFFFFFFFFu

/* ------------------------------------------------------------------------------------ */
/* Skip reasons (kept in the order of botunet.sessions.accounting.SKIP_REASONS)           */
/* ------------------------------------------------------------------------------------ */

enum {
    SK_OK = 0,
    SK_NON_IP,
    SK_TRUNC_LINK,
    SK_TRUNC_IP,
    SK_FRAGMENT,
    SK_UNSUP_LINK,
    SK_UNSUP_IP,
    SK_TRUNC_L4,
    SK_AFTER_CLOSE,
    N_REASONS
};

static const char *const REASON_NAMES[N_REASONS] = {
    "",           "non_ip",         "truncated_link", "truncated_ip", "fragment",
    "unsupported_link", "unsupported_ip", "truncated_l4", "after_close",
};

enum { END_IDLE = 0, END_ACTIVE, END_FIN, END_RST, END_END, END_OPEN, N_ENDS };
static const char *const END_NAMES[N_ENDS] = {"idle", "active", "fin", "rst", "end", ""};

static PyObject *FormatError;
static PyObject *END_STR[N_ENDS];
static PyObject *EVENT_READY;
static PyObject *EVENT_END;

/* ------------------------------------------------------------------------------------ */
/* Byte helpers                                                                          */
/* ------------------------------------------------------------------------------------ */

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint16_t le16(const uint8_t *p) { return (uint16_t)((p[1] << 8) | p[0]); }
static inline uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint32_t le32(const uint8_t *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}
static inline uint32_t rd32(const uint8_t *p, int big) { return big ? be32(p) : le32(p); }
static inline uint16_t rd16(const uint8_t *p, int big) { return big ? be16(p) : le16(p); }

/* ------------------------------------------------------------------------------------ */
/* Packet decoding: link layer -> IP -> transport                                        */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *ip;       /* IP header of the packet used (inner one for tunnels) */
    uint32_t avail;          /* captured bytes from ip, cut at ip_length (no link padding) */
    uint32_t ip_length;      /* IP length from the header, or captured when it says 0 */
    uint32_t l4_offset;      /* transport header offset from ip */
    uint32_t payload_length; /* transport payload (TCP/UDP) or IP payload (others) */
    uint16_t sport, dport;
    uint8_t version, proto, tcp_flags;
    uint8_t src[16], dst[16];
} pkt_t;

static int decode_ip(const uint8_t *ip, uint32_t cap, int expect, int tunnels, int depth,
                     pkt_t *o);

/* Walk EtherType-tagged headers (VLAN, MPLS, PPPoE) from offset off of p[0..len). */
static int decode_ethertype(const uint8_t *p, uint32_t len, uint32_t off, uint16_t type,
                            int tunnels, int depth, pkt_t *o)
{
    for (int guard = 0; guard < 64; guard++) {
        switch (type) {
        case 0x0800:
            return decode_ip(p + off, len - off, 4, tunnels, depth, o);
        case 0x86DD:
            return decode_ip(p + off, len - off, 6, tunnels, depth, o);
        case 0x8100: /* 802.1Q */
        case 0x88A8: /* 802.1ad */
        case 0x9100: /* pre-standard QinQ */
        case 0x9200:
            if (len - off < 4) return SK_TRUNC_LINK;
            type = be16(p + off + 2);
            off += 4;
            break;
        case 0x8847: /* MPLS unicast */
        case 0x8848: /* MPLS multicast */
            for (;;) {
                if (len - off < 4) return SK_TRUNC_LINK;
                int bottom = p[off + 2] & 1;
                off += 4;
                if (bottom) break;
            }
            /* No type field after the label stack: the first nibble tells IPv4 / IPv6. */
            if (len - off < 1) return SK_TRUNC_IP;
            if ((p[off] >> 4) == 4) return decode_ip(p + off, len - off, 4, tunnels, depth, o);
            if ((p[off] >> 4) == 6) return decode_ip(p + off, len - off, 6, tunnels, depth, o);
            return SK_NON_IP;
        case 0x8864: { /* PPPoE session: 6-byte header, then the PPP protocol */
            if (len - off < 8) return SK_TRUNC_LINK;
            uint16_t ppp = be16(p + off + 6);
            off += 8;
            if (ppp == 0x0021) return decode_ip(p + off, len - off, 4, tunnels, depth, o);
            if (ppp == 0x0057) return decode_ip(p + off, len - off, 6, tunnels, depth, o);
            return SK_NON_IP;
        }
        default:
            return SK_NON_IP;
        }
    }
    return SK_NON_IP;
}

static int decode_ethernet(const uint8_t *p, uint32_t len, int tunnels, int depth, pkt_t *o)
{
    if (len < 14) return SK_TRUNC_LINK;
    uint16_t type = be16(p + 12);
    uint32_t off = 14;
    if (type < 0x0600) {
        /* 802.3 length field: only LLC/SNAP can carry an EtherType (STP, CDP do not). */
        if (len < 22) return SK_NON_IP;
        if (!(p[14] == 0xAA && p[15] == 0xAA && p[16] == 0x03)) return SK_NON_IP;
        type = be16(p + 20);
        off = 22;
    }
    return decode_ethertype(p, len, off, type, tunnels, depth, o);
}

static int decode_ppp(const uint8_t *p, uint32_t len, int tunnels, pkt_t *o)
{
    uint32_t off = 0;
    if (len >= 2 && p[0] == 0xFF && p[1] == 0x03) off = 2;
    if (len < off + 2) return SK_TRUNC_LINK;
    uint16_t proto = be16(p + off);
    off += 2;
    if (proto == 0x0021) return decode_ip(p + off, len - off, 4, tunnels, 0, o);
    if (proto == 0x0057) return decode_ip(p + off, len - off, 6, tunnels, 0, o);
    return SK_NON_IP;
}

static int decode_frame(uint32_t linktype, const uint8_t *p, uint32_t len, int tunnels,
                        pkt_t *o)
{
    switch (linktype) {
    case 1: /* Ethernet */
        return decode_ethernet(p, len, tunnels, 0, o);
    case 113: { /* Linux cooked capture v1: 16-byte header, protocol last */
        if (len < 16) return SK_TRUNC_LINK;
        if (be16(p + 2) == 824) return SK_NON_IP; /* netlink */
        uint16_t proto = be16(p + 14);
        if (proto < 0x0600) return SK_NON_IP;
        return decode_ethertype(p, len, 16, proto, tunnels, 0, o);
    }
    case 276: { /* Linux cooked capture v2: 20-byte header, protocol first */
        if (len < 20) return SK_TRUNC_LINK;
        uint16_t proto = be16(p);
        if (proto < 0x0600) return SK_NON_IP;
        return decode_ethertype(p, len, 20, proto, tunnels, 0, o);
    }
    case 101: /* raw IP, the version nibble tells which */
    case 12:
    case 14:
        return decode_ip(p, len, 0, tunnels, 0, o);
    case 228:
        return decode_ip(p, len, 4, tunnels, 0, o);
    case 229:
        return decode_ip(p, len, 6, tunnels, 0, o);
    case 0:     /* BSD loopback, address family in the capturing host's byte order */
    case 108: { /* OpenBSD loopback, network byte order */
        if (len < 4) return SK_TRUNC_LINK;
        uint32_t af = le32(p);
        if (af > 0xFF) af = be32(p);
        if (af == 2) return decode_ip(p + 4, len - 4, 4, tunnels, 0, o);
        /* AF_INET6 differs by OS: 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS). */
        if (af == 24 || af == 28 || af == 30) return decode_ip(p + 4, len - 4, 6, tunnels, 0, o);
        return SK_NON_IP;
    }
    case 9:  /* PPP */
    case 50: /* PPP in HDLC-like framing */
        return decode_ppp(p, len, tunnels, o);
    case 104: { /* Cisco HDLC: address, control, EtherType */
        if (len < 4) return SK_TRUNC_LINK;
        return decode_ethertype(p, len, 4, be16(p + 2), tunnels, 0, o);
    }
    default:
        return SK_UNSUP_LINK;
    }
}

/* GRE (RFC 2784/2890): optional checksum, key and sequence words, then the payload. */
static int decode_gre(const uint8_t *t, uint32_t rem, int depth, pkt_t *o)
{
    if (rem < 4) return SK_TRUNC_L4;
    uint16_t flags = be16(t);
    if ((flags & 0x0007) != 0 || (flags & 0x4000)) return SK_UNSUP_IP; /* v1 (PPTP), routing */
    uint32_t off = 4;
    if (flags & 0x8000) off += 4;
    if (flags & 0x2000) off += 4;
    if (flags & 0x1000) off += 4;
    if (off > rem) return SK_TRUNC_L4;
    uint16_t type = be16(t + 2);
    if (type == 0x0800) return decode_ip(t + off, rem - off, 4, 1, depth + 1, o);
    if (type == 0x86DD) return decode_ip(t + off, rem - off, 6, 1, depth + 1, o);
    if (type == 0x6558) return decode_ethernet(t + off, rem - off, 1, depth + 1, o);
    return SK_UNSUP_IP;
}

/* VXLAN (RFC 7348) on UDP 4789: 8-byte UDP header, 8-byte VXLAN header, Ethernet. */
static int decode_vxlan(const uint8_t *t, uint32_t rem, int depth, pkt_t *o)
{
    if (rem < 16 || !(t[8] & 0x08)) return SK_UNSUP_IP;
    return decode_ethernet(t + 16, rem - 16, 1, depth + 1, o);
}

static int decode_ip(const uint8_t *ip, uint32_t cap, int expect, int tunnels, int depth,
                     pkt_t *o)
{
    uint32_t tot, l4;
    uint8_t proto;

    if (cap < 1) return SK_TRUNC_IP;
    int v = ip[0] >> 4;
    if (expect && v != expect) return SK_UNSUP_IP;

    if (v == 4) {
        if (cap < 20) return SK_TRUNC_IP;
        uint32_t ihl = (ip[0] & 15u) * 4u;
        if (ihl < 20) return SK_UNSUP_IP;
        if (cap < ihl) return SK_TRUNC_IP;
        tot = be16(ip + 2);
        /* 0 is written by hosts that capture before segmentation offload splits the packet */
        if (tot == 0) tot = cap;
        else if (tot < ihl) return SK_UNSUP_IP;
        /* A non-first fragment has no transport header: it cannot be given to a session. */
        if (be16(ip + 6) & 0x1FFF) return SK_FRAGMENT;
        proto = ip[9];
        memset(o->src, 0, 16);
        memset(o->dst, 0, 16);
        memcpy(o->src, ip + 12, 4);
        memcpy(o->dst, ip + 16, 4);
        l4 = ihl;
    } else if (v == 6) {
        if (cap < 40) return SK_TRUNC_IP;
        uint32_t plen = be16(ip + 4);
        tot = plen ? 40 + plen : cap; /* 0: jumbogram or offload, take the captured length */
        uint32_t lim = cap < tot ? cap : tot;
        memcpy(o->src, ip + 8, 16);
        memcpy(o->dst, ip + 24, 16);
        proto = ip[6];
        l4 = 40;
        int i;
        for (i = 0; i < MAX_IPV6_EXT; i++) {
            uint32_t hl;
            if (proto == 0 || proto == 43 || proto == 60 || proto == 135) {
                if (lim < l4 + 2) return SK_TRUNC_IP;
                hl = ((uint32_t)ip[l4 + 1] + 1u) * 8u;
            } else if (proto == 51) { /* AH counts 4-byte words, minus 2 */
                if (lim < l4 + 2) return SK_TRUNC_IP;
                hl = ((uint32_t)ip[l4 + 1] + 2u) * 4u;
            } else if (proto == 44) {
                if (lim < l4 + 8) return SK_TRUNC_IP;
                if (be16(ip + l4 + 2) & 0xFFF8) return SK_FRAGMENT;
                hl = 8;
            } else {
                break;
            }
            proto = ip[l4];
            l4 += hl;
        }
        if (i == MAX_IPV6_EXT) return SK_UNSUP_IP;
        if (l4 > lim) return SK_TRUNC_IP;
    } else {
        return SK_UNSUP_IP;
    }

    uint32_t avail = cap < tot ? cap : tot;
    const uint8_t *t = ip + l4;
    uint32_t rem = avail - l4;

    if (tunnels && depth < MAX_TUNNEL_DEPTH) {
        /* The inner packet replaces the outer one; if it cannot be decoded the outer
           packet stays in its own session. */
        pkt_t inner;
        int r = -1;
        if (proto == 4) r = decode_ip(t, rem, 4, 1, depth + 1, &inner);
        else if (proto == 41) r = decode_ip(t, rem, 6, 1, depth + 1, &inner);
        else if (proto == 47) r = decode_gre(t, rem, depth, &inner);
        else if (proto == 17 && rem >= 8 && be16(t + 2) == 4789)
            r = decode_vxlan(t, rem, depth, &inner);
        if (r == SK_OK) {
            *o = inner;
            return SK_OK;
        }
    }

    o->ip = ip;
    o->avail = avail;
    o->ip_length = tot;
    o->l4_offset = l4;
    o->version = (uint8_t)v;
    o->proto = proto;
    o->tcp_flags = 0;
    o->sport = o->dport = 0;

    if (proto == 6) {
        if (rem < 4) return SK_TRUNC_L4;
        o->sport = be16(t);
        o->dport = be16(t + 2);
        uint32_t hl = 20;
        if (rem >= 13) {
            hl = (uint32_t)(t[12] >> 4) * 4u;
            if (hl < 20) hl = 20;
        }
        if (rem >= 14) o->tcp_flags = t[13];
        o->payload_length = tot > l4 + hl ? tot - l4 - hl : 0;
    } else if (proto == 17) {
        if (rem < 4) return SK_TRUNC_L4;
        o->sport = be16(t);
        o->dport = be16(t + 2);
        o->payload_length = tot > l4 + 8 ? tot - l4 - 8 : 0;
    } else {
        o->payload_length = tot - l4;
    }
    return SK_OK;
}

/* ------------------------------------------------------------------------------------ */
/* Record framing: pcap and pcapng                                                      */
/* ------------------------------------------------------------------------------------ */

/* Called per record: < 0 on a Python error, 1 to pause after this record, else 0. */
typedef int (*record_fn)(void *ctx, uint32_t linktype, const uint8_t *data, uint32_t caplen,
                         uint32_t wirelen, int64_t ts_ns);

typedef struct {
    uint32_t linktype;
    uint8_t tsresol;
    int64_t tsoffset_s;
} iface_t;

enum { FMT_UNKNOWN = 0, FMT_PCAP, FMT_PCAPNG };

typedef struct {
    int format;
    int big;           /* file (section) is big-endian */
    int nsec;          /* pcap: nanosecond timestamps */
    int header_done;   /* pcap: global header consumed */
    uint32_t linktype; /* pcap */
    iface_t *ifaces;
    uint32_t n_ifaces, cap_ifaces;
    int64_t last_ts_ns; /* for pcapng simple packet blocks, which carry no timestamp */
    uint64_t offset;    /* file offset of buf[start], the first byte not yet framed */
    uint64_t total;     /* bytes fed so far */
    uint8_t *buf;
    size_t start, len, cap; /* buf[start..len) waits to be framed */
} framer_t;

static void framer_free(framer_t *f)
{
    free(f->buf);
    free(f->ifaces);
    f->buf = NULL;
    f->ifaces = NULL;
    f->start = f->len = f->cap = 0;
    f->n_ifaces = f->cap_ifaces = 0;
}

static int format_error(uint64_t offset, const char *what)
{
    PyErr_Format(FormatError, "%s at offset %llu", what, (unsigned long long)offset);
    return -1;
}

static const int64_t POW10[20] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
    100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
    1000000000000000000LL, 0,
};

/* pcapng timestamp units to nanoseconds: if_tsresol is 10^-n, or 2^-n with the top bit. */
static int64_t pcapng_ts_ns(uint64_t ts, const iface_t *ifc)
{
    uint8_t r = ifc->tsresol;
    int64_t ns;
    if (r & 0x80) {
        unsigned e = r & 0x7F;
        unsigned __int128 v = (unsigned __int128)ts * 1000000000u;
        ns = (int64_t)(uint64_t)(v >> e);
    } else if (r <= 9) {
        ns = (int64_t)(ts * (uint64_t)POW10[9 - r]);
    } else if (r <= 18) {
        ns = (int64_t)(ts / (uint64_t)POW10[r - 9]);
    } else {
        ns = 0;
    }
    return (int64_t)((uint64_t)ns + (uint64_t)ifc->tsoffset_s * 1000000000ULL);
}

static int pcapng_add_iface(framer_t *f, const uint8_t *b, uint32_t blen, uint64_t at)
{
    int big = f->big;
    if (blen < 20) return format_error(at, "interface description block too short");
    if (f->n_ifaces == f->cap_ifaces) {
        uint32_t nc = f->cap_ifaces ? f->cap_ifaces * 2 : 4;
        if (nc > 65536) return format_error(at, "too many interfaces");
        iface_t *n = realloc(f->ifaces, nc * sizeof(iface_t));
        if (!n) {
            PyErr_NoMemory();
            return -1;
        }
        f->ifaces = n;
        f->cap_ifaces = nc;
    }
    iface_t *ifc = &f->ifaces[f->n_ifaces++];
    ifc->linktype = rd16(b + 8, big);
    ifc->tsresol = 6;
    ifc->tsoffset_s = 0;
    /* options run from byte 16 to the trailing length word */
    uint32_t o = 16, end = blen - 4;
    while (o + 4 <= end) {
        uint16_t code = rd16(b + o, big), olen = rd16(b + o + 2, big);
        if (code == 0) break;
        if ((uint32_t)olen > end - o - 4) break;
        const uint8_t *v = b + o + 4;
        if (code == 9 && olen >= 1) ifc->tsresol = v[0];
        else if (code == 14 && olen >= 8) {
            uint64_t hi = rd32(v, big), lo = rd32(v + 4, big);
            ifc->tsoffset_s = big ? (int64_t)((hi << 32) | lo) : (int64_t)((lo << 32) | hi);
        }
        o += 4 + (((uint32_t)olen + 3u) & ~3u);
    }
    return 0;
}

/* Handle one complete pcapng block b[0..blen). */
static int pcapng_block(framer_t *f, const uint8_t *b, uint32_t blen, uint64_t at, record_fn fn,
                        void *ctx)
{
    int big = f->big;
    uint32_t type = rd32(b, big);
    uint32_t ifid, caplen, wirelen, hdr;
    uint64_t ts;
    const iface_t *ifc;

    switch (type) {
    case 0x0A0D0D0A: /* section header: interfaces start again */
        f->n_ifaces = 0;
        return 0;
    case 1:
        return pcapng_add_iface(f, b, blen, at);
    case 6: /* enhanced packet block */
        if (blen < 32) return format_error(at, "enhanced packet block too short");
        ifid = rd32(b + 8, big);
        ts = ((uint64_t)rd32(b + 12, big) << 32) | rd32(b + 16, big);
        caplen = rd32(b + 20, big);
        wirelen = rd32(b + 24, big);
        hdr = 28;
        break;
    case 2: /* obsolete packet block */
        if (blen < 32) return format_error(at, "packet block too short");
        ifid = rd16(b + 8, big);
        ts = ((uint64_t)rd32(b + 12, big) << 32) | rd32(b + 16, big);
        caplen = rd32(b + 20, big);
        wirelen = rd32(b + 24, big);
        hdr = 28;
        break;
    case 3: /* simple packet block: interface 0, no timestamp, length from the block */
        if (blen < 16) return format_error(at, "simple packet block too short");
        wirelen = rd32(b + 8, big);
        caplen = blen - 16 < wirelen ? blen - 16 : wirelen;
        if (f->n_ifaces == 0) return fn(ctx, LINK_UNKNOWN_IFACE, b + 12, caplen, wirelen, 0);
        return fn(ctx, f->ifaces[0].linktype, b + 12, caplen, wirelen, f->last_ts_ns);
    default: /* statistics, name resolution, custom and other blocks carry no packets */
        return 0;
    }
    if (caplen > blen - hdr - 4) return format_error(at, "packet length beyond its block");
    if (ifid >= f->n_ifaces) return fn(ctx, LINK_UNKNOWN_IFACE, b + hdr, caplen, wirelen, 0);
    ifc = &f->ifaces[ifid];
    f->last_ts_ns = pcapng_ts_ns(ts, ifc);
    return fn(ctx, ifc->linktype, b + hdr, caplen, wirelen, f->last_ts_ns);
}

/* Decide the format from the first bytes; 0 when more bytes are needed. */
static int framer_sniff(framer_t *f, const uint8_t *p, size_t n)
{
    if (n < 4) return 0;
    uint32_t m = le32(p);
    if (m == 0xA1B2C3D4 || m == 0xA1B23C4D) {
        f->format = FMT_PCAP;
        f->big = 0;
        f->nsec = m == 0xA1B23C4D;
    } else if (m == 0xD4C3B2A1 || m == 0x4D3CB2A1) {
        f->format = FMT_PCAP;
        f->big = 1;
        f->nsec = m == 0x4D3CB2A1;
    } else if (m == 0x0A0D0D0A) {
        f->format = FMT_PCAPNG;
    } else {
        PyErr_Format(FormatError,
                     "not a pcap or pcapng capture (starts with %02x %02x %02x %02x)", p[0], p[1],
                     p[2], p[3]);
        return -1;
    }
    return 1;
}

/* Frame every complete record in p[0..n); returns bytes consumed or -1 on error. */
static Py_ssize_t framer_run(framer_t *f, const uint8_t *p, size_t n, record_fn fn, void *ctx)
{
    size_t pos = 0;
    if (f->format == FMT_UNKNOWN) {
        int r = framer_sniff(f, p, n);
        if (r <= 0) return r;
    }
    if (f->format == FMT_PCAP) {
        if (!f->header_done) {
            if (n < 24) return 0;
            if (rd16(p + 4, f->big) != 2) return format_error(0, "unsupported pcap version");
            f->linktype = rd32(p + 20, f->big) & 0xFFFF;
            f->header_done = 1;
            pos = 24;
        }
        int big = f->big;
        uint32_t mult = f->nsec ? 1u : 1000u;
        while (n - pos >= 16) {
            const uint8_t *h = p + pos;
            uint32_t incl = rd32(h + 8, big);
            if (incl > PCAP_MAX_RECORD) {
                char what[96];
                snprintf(what, sizeof what, "corrupt record length %u (more than %u)", incl,
                         PCAP_MAX_RECORD);
                return format_error(f->offset + pos, what);
            }
            if (n - pos - 16 < incl) break;
            /* the fraction is signed, as libpcap reads it: a corrupt one stays near its second */
            int64_t ts = (int64_t)rd32(h, big) * 1000000000LL +
                         (int64_t)(int32_t)rd32(h + 4, big) * (int64_t)mult;
            int r = fn(ctx, f->linktype, h + 16, incl, rd32(h + 12, big), ts);
            if (r < 0) return -1;
            pos += 16 + (size_t)incl;
            if (r > 0) break;
        }
        return (Py_ssize_t)pos;
    }
    /* pcapng */
    while (n - pos >= 12) {
        const uint8_t *b = p + pos;
        uint32_t type = le32(b);
        if (type == 0x0A0D0D0A) {
            uint32_t bom = le32(b + 8);
            if (bom == 0x1A2B3C4D) f->big = 0;
            else if (bom == 0x4D3C2B1A) f->big = 1;
            else return format_error(f->offset + pos, "corrupt section header byte order");
        } else if (pos == 0 && f->offset == 0) {
            return format_error(0, "pcapng file does not start with a section header");
        }
        uint32_t blen = rd32(b + 4, f->big);
        if (blen < 12 || (blen & 3) || blen > PCAPNG_MAX_BLOCK) {
            char what[96];
            snprintf(what, sizeof what, "corrupt block length %u", blen);
            return format_error(f->offset + pos, what);
        }
        if (n - pos < blen) break;
        if (rd32(b + blen - 4, f->big) != blen)
            return format_error(f->offset + pos, "corrupt block (trailing length differs)");
        int r = pcapng_block(f, b, blen, f->offset + pos, fn, ctx);
        if (r < 0) return -1;
        pos += blen;
        if (r > 0) break;
    }
    return (Py_ssize_t)pos;
}

/* Append a chunk (may be empty) and frame complete records until the callback pauses;
   what is left waits for the next call. */
static int framer_feed(framer_t *f, const uint8_t *data, size_t n, record_fn fn, void *ctx)
{
    if (n) {
        if (f->start) {
            memmove(f->buf, f->buf + f->start, f->len - f->start);
            f->len -= f->start;
            f->start = 0;
        }
        if (f->len + n > f->cap) {
            size_t nc = f->cap ? f->cap : 65536;
            while (nc < f->len + n) nc *= 2;
            uint8_t *nb = realloc(f->buf, nc);
            if (!nb) {
                PyErr_NoMemory();
                return -1;
            }
            f->buf = nb;
            f->cap = nc;
        }
        memcpy(f->buf + f->len, data, n);
        f->len += n;
        f->total += n;
    }
    if (f->len == f->start) return 0;
    Py_ssize_t used = framer_run(f, f->buf + f->start, f->len - f->start, fn, ctx);
    if (used < 0) return -1;
    f->start += (size_t)used;
    f->offset += (uint64_t)used;
    return 0;
}

/* At end of input: an error for an empty or headerless file, else 0. */
static int framer_check_end(framer_t *f)
{
    if (f->total == 0) {
        PyErr_SetString(FormatError, "empty file");
        return -1;
    }
    if (f->format == FMT_UNKNOWN) {
        PyErr_SetString(FormatError, "too short to be a capture");
        return -1;
    }
    if (f->format == FMT_PCAP && !f->header_done) {
        PyErr_SetString(FormatError, "pcap file header is cut short");
        return -1;
    }
    if (f->format == FMT_PCAPNG && f->offset == 0 && f->len > f->start) {
        PyErr_SetString(FormatError, "pcapng section header is cut short");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Sessions                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    uint8_t a[16], b[16]; /* endpoints ordered so that (a, pa) <= (b, pb) */
    uint16_t pa, pb;
    uint8_t proto, version, pad[2];
} flowkey_t;

typedef struct {
    int64_t ts_ns;
    uint32_t index, ip_length, payload_length, l4_offset, len;
    uint8_t direction, tcp_flags, pad[6];
} kept_t; /* followed by len bytes, padded to 8 */

typedef struct session {
    flowkey_t key;
    uint64_t hash;
    int64_t first_ns, last_ns;
    int64_t first_tick, last_tick; /* milliseconds, monotonic clock */
    uint64_t pkts[2], bytes[2];
    int64_t payload_index; /* first packet with payload, -1 before */
    uint8_t *kept;
    size_t kept_len, kept_cap;
    uint32_t n_kept;
    /* closing: ended by FIN / RST, waiting out the grace period before it is handed out;
       closed: handed out after a TCP close, kept only as a marker of its 5-tuple */
    uint8_t src_is_a, closing, closed, fin_mask, ready_done, end;
    int64_t close_tick; /* milliseconds, when closing began */
    /* links of the one list the session is on: the LRU (open sessions and closed
       markers, by last packet, oldest first) or the closing FIFO (by close_tick) */
    struct session *prev, *next;
} session_t;

typedef struct {
    session_t *head, *tail;
} slist_t;

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t key_hash(const flowkey_t *k)
{
    uint64_t w[5];
    memcpy(w, k, sizeof w);
    uint64_t h = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 5; i++) h = (h ^ w[i]) * 0x100000001B3ULL + (h >> 29);
    return mix64(h);
}

typedef struct {
    PyObject_HEAD
    framer_t fr;
    /* settings */
    int64_t idle_ms, active_ms, grace_ms;
    int tcp_close, tunnels, events, ready_payload;
    uint32_t keep_packets, keep_bytes, ready_packets;
    PyObject *session_cls, *packet_cls, *capture;
    /* slot offsets when the classes are plain slotted records (see record_layout) */
    Py_ssize_t session_slots[15], packet_slots[8];
    int fast_session, fast_packet;
    /* state */
    PyObject *out;
    int64_t clock;
    int have_clock, finished;
    Py_ssize_t batch; /* results per feed() before pausing; 0 while finishing */
    session_t **slots;
    size_t n_slots, n_used;
    slist_t lru, closing;
    session_t *free_list;
    /* accounting */
    unsigned long long read, in_sessions, sessions, live, peak_live;
    unsigned long long skipped[N_REASONS];
} MeterObject;

static void list_unlink(slist_t *l, session_t *s)
{
    if (s->prev) s->prev->next = s->next;
    else l->head = s->next;
    if (s->next) s->next->prev = s->prev;
    else l->tail = s->prev;
    s->prev = s->next = NULL;
}

static void list_push(slist_t *l, session_t *s)
{
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail) l->tail->next = s;
    else l->head = s;
    l->tail = s;
}

/* The list a session is on. */
static slist_t *list_of(MeterObject *m, session_t *s)
{
    return s->closing ? &m->closing : &m->lru;
}

static int table_grow(MeterObject *m)
{
    size_t nn = m->n_slots ? m->n_slots * 2 : 1024;
    session_t **ns = calloc(nn, sizeof(session_t *));
    if (!ns) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < m->n_slots; i++) {
        session_t *s = m->slots[i];
        if (!s) continue;
        size_t j = (size_t)s->hash & (nn - 1);
        while (ns[j]) j = (j + 1) & (nn - 1);
        ns[j] = s;
    }
    free(m->slots);
    m->slots = ns;
    m->n_slots = nn;
    return 0;
}

static session_t *table_find(MeterObject *m, const flowkey_t *k, uint64_t h)
{
    size_t mask = m->n_slots - 1, i = (size_t)h & mask;
    for (;;) {
        session_t *s = m->slots[i];
        if (!s) return NULL;
        if (s->hash == h && memcmp(&s->key, k, sizeof(flowkey_t)) == 0) return s;
        i = (i + 1) & mask;
    }
}

static void table_insert(MeterObject *m, session_t *s)
{
    size_t mask = m->n_slots - 1, i = (size_t)s->hash & mask;
    while (m->slots[i]) i = (i + 1) & mask;
    m->slots[i] = s;
    m->n_used++;
}

/* Remove with backward shift, so linear probing needs no tombstones. */
static void table_remove(MeterObject *m, session_t *s)
{
    size_t mask = m->n_slots - 1, i = (size_t)s->hash & mask;
    while (m->slots[i] != s) i = (i + 1) & mask;
    m->slots[i] = NULL;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        session_t *t = m->slots[j];
        if (!t) break;
        size_t home = (size_t)t->hash & mask;
        int stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            m->slots[i] = t;
            m->slots[j] = NULL;
            i = j;
        }
    }
    m->n_used--;
}

static void session_drop_kept(session_t *s)
{
    free(s->kept);
    s->kept = NULL;
    s->kept_len = s->kept_cap = 0;
    s->n_kept = 0;
}

static void session_release(MeterObject *m, session_t *s)
{
    table_remove(m, s);
    list_unlink(list_of(m, s), s);
    session_drop_kept(s);
    s->next = m->free_list;
    m->free_list = s;
    m->live--;
}

/* A str from ASCII bytes, without a UTF-8 decoding pass. */
static PyObject *ascii_str(const char *text, Py_ssize_t n)
{
    PyObject *r = PyUnicode_New(n, 127);
    if (r) memcpy(PyUnicode_1BYTE_DATA(r), text, (size_t)n);
    return r;
}

static PyObject *format_ip(const uint8_t *a, int version)
{
    char buf[64];
    if (version == 4) {
        char *o = buf;
        for (int i = 0; i < 4; i++) {
            unsigned v = a[i];
            if (v >= 100) *o++ = (char)('0' + v / 100);
            if (v >= 10) *o++ = (char)('0' + v / 10 % 10);
            *o++ = (char)('0' + v % 10);
            *o++ = '.';
        }
        return ascii_str(buf, o - buf - 1);
    }
    if (!inet_ntop(AF_INET6, a, buf, sizeof buf)) buf[0] = 0;
    return ascii_str(buf, (Py_ssize_t)strlen(buf));
}

static const char *const SESSION_FIELDS[15] = {
    "capture", "protocol", "ip_version", "src_ip", "src_port", "dst_ip", "dst_port", "first_ns",
    "last_ns", "packets_fwd", "packets_bwd", "bytes_fwd", "bytes_bwd", "end_reason", "packets",
};
static const char *const PACKET_FIELDS[8] = {
    "index", "ts_ns", "direction", "data", "ip_length", "l4_offset", "payload_length", "tcp_flags",
};

/* 1 when cls is a dataclass whose fields are exactly these names, each stored in a slot,
   with no __post_init__: then an instance can be filled slot by slot, as __init__ would,
   without running Python code. Any other class is called normally. */
static int record_layout(PyObject *cls, const char *const *names, int n, Py_ssize_t *offsets)
{
    if (!PyType_Check(cls) || PyObject_HasAttrString(cls, "__post_init__")) return 0;
    PyObject *fields = PyObject_GetAttrString(cls, "__dataclass_fields__");
    if (!fields) {
        PyErr_Clear();
        return 0;
    }
    int ok = PyDict_Check(fields) && PyDict_Size(fields) == n;
    Py_DECREF(fields);
    for (int i = 0; ok && i < n; i++) {
        PyObject *d = PyObject_GetAttrString(cls, names[i]);
        if (!d) {
            PyErr_Clear();
            return 0;
        }
        ok = Py_IS_TYPE(d, &PyMemberDescr_Type) &&
             ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
        if (ok) offsets[i] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
    }
    return ok;
}

/* An instance of cls from n new references (stolen, also on failure). */
static PyObject *make_record(PyObject *cls, int fast, const Py_ssize_t *offsets, PyObject **args,
                             int n)
{
    PyObject *r = NULL;
    int ok = 1;
    for (int j = 0; j < n; j++) ok &= args[j] != NULL;
    if (ok && fast) {
        PyTypeObject *tp = (PyTypeObject *)cls;
        r = tp->tp_alloc(tp, 0);
        if (r) {
            for (int j = 0; j < n; j++) {
                *(PyObject **)((char *)r + offsets[j]) = args[j];
                args[j] = NULL;
            }
        }
    } else if (ok) {
        r = PyObject_Vectorcall(cls, args, n, NULL);
    }
    for (int j = 0; j < n; j++) Py_XDECREF(args[j]);
    return r;
}

static PyObject *build_packets(MeterObject *m, session_t *s)
{
    PyObject *tuple = PyTuple_New(s->n_kept);
    if (!tuple) return NULL;
    size_t off = 0;
    for (uint32_t i = 0; i < s->n_kept; i++) {
        kept_t *k = (kept_t *)(s->kept + off);
        PyObject *args[8];
        args[0] = PyLong_FromUnsignedLong(k->index);
        args[1] = PyLong_FromLongLong(k->ts_ns);
        args[2] = PyLong_FromLong(k->direction);
        args[3] = PyBytes_FromStringAndSize((const char *)(k + 1), k->len);
        args[4] = PyLong_FromUnsignedLong(k->ip_length);
        args[5] = PyLong_FromUnsignedLong(k->l4_offset);
        args[6] = PyLong_FromUnsignedLong(k->payload_length);
        args[7] = PyLong_FromLong(k->tcp_flags);
        PyObject *p = make_record(m->packet_cls, m->fast_packet, m->packet_slots, args, 8);
        if (!p) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, p);
        off += sizeof(kept_t) + (((size_t)k->len + 7) & ~(size_t)7);
    }
    return tuple;
}

/* A Session object for s; packets only when asked (the "end" of a ready session has none). */
static PyObject *build_session(MeterObject *m, session_t *s, int end, int with_packets)
{
    const flowkey_t *k = &s->key;
    const uint8_t *sa = s->src_is_a ? k->a : k->b, *da = s->src_is_a ? k->b : k->a;
    unsigned sp = s->src_is_a ? k->pa : k->pb, dp = s->src_is_a ? k->pb : k->pa;
    PyObject *args[15];
    args[0] = m->capture;
    Py_INCREF(m->capture);
    args[1] = PyLong_FromLong(k->proto);
    args[2] = PyLong_FromLong(k->version);
    args[3] = format_ip(sa, k->version);
    args[4] = PyLong_FromUnsignedLong(sp);
    args[5] = format_ip(da, k->version);
    args[6] = PyLong_FromUnsignedLong(dp);
    args[7] = PyLong_FromLongLong(s->first_ns);
    args[8] = PyLong_FromLongLong(s->last_ns);
    args[9] = PyLong_FromUnsignedLongLong(s->pkts[0]);
    args[10] = PyLong_FromUnsignedLongLong(s->pkts[1]);
    args[11] = PyLong_FromUnsignedLongLong(s->bytes[0]);
    args[12] = PyLong_FromUnsignedLongLong(s->bytes[1]);
    args[13] = END_STR[end];
    Py_INCREF(args[13]);
    args[14] = with_packets && s->n_kept ? build_packets(m, s) : PyTuple_New(0);
    return make_record(m->session_cls, m->fast_session, m->session_slots, args, 15);
}

static int emit(MeterObject *m, PyObject *kind, PyObject *session)
{
    if (!session) return -1;
    int r;
    if (m->events) {
        PyObject *t = PyTuple_Pack(2, kind, session);
        Py_DECREF(session);
        if (!t) return -1;
        r = PyList_Append(m->out, t);
        Py_DECREF(t);
    } else {
        r = PyList_Append(m->out, session);
        Py_DECREF(session);
    }
    return r;
}

/* Hand out a session that has not been handed out yet. */
static int session_emit(MeterObject *m, session_t *s, int end)
{
    if (s->closed) return 0;
    if (emit(m, EVENT_END, build_session(m, s, end, !s->ready_done)) < 0) return -1;
    m->sessions++;
    return 0;
}

/* Turn a session handed out after a TCP close into a closed marker at the LRU tail: later
   packets of its 5-tuple are skipped ("after_close") until a new SYN, or until the 5-tuple
   has been quiet for the idle timeout. Its last_tick may be older than its neighbours'
   (by at most the grace period); meter_packet checks a marker's age before using it, so
   a marker freed a little late by the LRU scan changes nothing. */
static void session_mark_closed(MeterObject *m, session_t *s)
{
    list_unlink(list_of(m, s), s);
    s->closing = 0;
    s->closed = 1;
    session_drop_kept(s);
    list_push(&m->lru, s);
}

/* End a session by timeout or end of input: hand it out (closed markers were already)
   and free it. */
static int session_end(MeterObject *m, session_t *s, int end)
{
    if (session_emit(m, s, s->closing ? s->end : end) < 0) return -1;
    session_release(m, s);
    return 0;
}

/* A TCP close (FIN both ways, or RST) at tick. With a grace period the session moves to
   the closing FIFO and keeps taking its 5-tuple's packets (the last ACK, retransmitted
   FIN / RST) until close_expire hands it out; without one it is handed out now. */
static int session_close(MeterObject *m, session_t *s, int end, int64_t tick)
{
    s->end = (uint8_t)end;
    if (m->grace_ms > 0) {
        list_unlink(&m->lru, s);
        s->closing = 1;
        s->close_tick = tick;
        list_push(&m->closing, s);
        return 0;
    }
    if (session_emit(m, s, end) < 0) return -1;
    session_mark_closed(m, s);
    return 0;
}

/* Hand out the closing sessions whose grace period is over at tick. The grace period is
   the same for all, so the FIFO's close order is also its expiry order. */
static int close_expire(MeterObject *m, int64_t tick)
{
    while (m->closing.head && tick - m->closing.head->close_tick >= m->grace_ms) {
        session_t *s = m->closing.head;
        if (session_emit(m, s, s->end) < 0) return -1;
        session_mark_closed(m, s);
    }
    return 0;
}

static int keep_packet(MeterObject *m, session_t *s, const pkt_t *p, uint32_t index, int dir,
                       int64_t ts_ns)
{
    uint32_t len = p->avail < m->keep_bytes ? p->avail : m->keep_bytes;
    size_t need = sizeof(kept_t) + (((size_t)len + 7) & ~(size_t)7);
    if (s->kept_len + need > s->kept_cap) {
        size_t nc = s->kept_cap ? s->kept_cap * 2 : need * 4;
        while (nc < s->kept_len + need) nc *= 2;
        uint8_t *nb = realloc(s->kept, nc);
        if (!nb) {
            PyErr_NoMemory();
            return -1;
        }
        s->kept = nb;
        s->kept_cap = nc;
    }
    kept_t *k = (kept_t *)(s->kept + s->kept_len);
    memset(k, 0, sizeof *k);
    k->ts_ns = ts_ns;
    k->index = index;
    k->ip_length = p->ip_length;
    k->payload_length = p->payload_length;
    k->l4_offset = p->l4_offset;
    k->len = len;
    k->direction = (uint8_t)dir;
    k->tcp_flags = p->tcp_flags;
    memcpy(k + 1, p->ip, len);
    s->kept_len += need;
    s->n_kept++;
    return 0;
}

static session_t *session_new(MeterObject *m, const flowkey_t *k, uint64_t h)
{
    if ((m->n_used + 1) * 2 > m->n_slots && table_grow(m) < 0) return NULL;
    session_t *s = m->free_list;
    if (s) m->free_list = s->next;
    else if (!(s = malloc(sizeof(session_t)))) {
        PyErr_NoMemory();
        return NULL;
    }
    memset(s, 0, sizeof *s);
    s->key = *k;
    s->hash = h;
    s->payload_index = -1;
    table_insert(m, s);
    list_push(&m->lru, s);
    m->live++;
    if (m->live > m->peak_live) m->peak_live = m->live;
    return s;
}

static int session_add(MeterObject *m, session_t *s, const pkt_t *p, int dir, int64_t ts_ns,
                       int64_t tick)
{
    uint64_t index = s->pkts[0] + s->pkts[1];
    if (index == 0) {
        s->first_ns = ts_ns;
        s->first_tick = tick;
    }
    s->last_ns = ts_ns;
    s->last_tick = tick;
    s->pkts[dir]++;
    s->bytes[dir] += p->ip_length;
    m->in_sessions++;
    if (s->payload_index < 0 && p->payload_length > 0) s->payload_index = (int64_t)index;

    if (!s->ready_done && m->keep_packets) {
        int keep = index < m->keep_packets ||
                   (s->payload_index >= 0 && index - (uint64_t)s->payload_index < m->keep_packets);
        if (keep && keep_packet(m, s, p, (uint32_t)index, dir, ts_ns) < 0) return -1;
    }
    /* A closing session is over: it is handed out within the grace period with what it
       kept, and is not made ready by its trailing packets. */
    if (s->closing) return 0;
    if (m->events && !s->ready_done) {
        int ready;
        if (m->ready_payload)
            ready = s->payload_index >= 0 &&
                    index + 1 - (uint64_t)s->payload_index == m->ready_packets;
        else
            ready = index + 1 == m->ready_packets;
        if (ready) {
            if (emit(m, EVENT_READY, build_session(m, s, END_OPEN, 1)) < 0) return -1;
            s->ready_done = 1;
            session_drop_kept(s);
        }
    }
    if (m->tcp_close && p->proto == 6) {
        if (p->tcp_flags & 0x04) return session_close(m, s, END_RST, tick);
        if (p->tcp_flags & 0x01) {
            s->fin_mask |= (uint8_t)(1u << dir);
            if (s->fin_mask == 3) return session_close(m, s, END_FIN, tick);
        }
    }
    return 0;
}

/* 0 (forward) or 1: the initiator's own packets go forward; with both endpoints equal, all
   do. src_is_a tells whether p's sender is endpoint a, c compares its addresses. */
static inline int packet_dir(const session_t *s, const pkt_t *p, int src_is_a, int c)
{
    return (src_is_a == s->src_is_a || (c == 0 && p->sport == p->dport)) ? 0 : 1;
}

static int meter_packet(MeterObject *m, uint32_t linktype, const uint8_t *data, uint32_t caplen,
                        int64_t ts_ns)
{
    pkt_t p;
    m->read++;
    int r = linktype == LINK_UNKNOWN_IFACE ? SK_UNSUP_LINK
                                          : decode_frame(linktype, data, caplen, m->tunnels, &p);
    if (r != SK_OK) {
        m->skipped[r]++;
        return 0;
    }

    /* Timeouts run on a millisecond clock that never goes back (as nfstream's does), so
       a reordered packet cannot end sessions early and both meters cut at the same packet. */
    int64_t tick = ts_ns >= 0 ? ts_ns / 1000000 : -((-ts_ns + 999999) / 1000000);
    if (!m->have_clock || tick > m->clock) {
        m->clock = tick;
        m->have_clock = 1;
    } else {
        tick = m->clock;
    }
    if (close_expire(m, tick) < 0) return -1;
    while (m->lru.head && tick - m->lru.head->last_tick >= m->idle_ms) {
        if (session_end(m, m->lru.head, END_IDLE) < 0) return -1;
    }

    flowkey_t k;
    memset(&k, 0, sizeof k);
    k.proto = p.proto;
    k.version = p.version;
    int c = memcmp(p.src, p.dst, 16);
    int src_is_a = c < 0 || (c == 0 && p.sport <= p.dport);
    if (src_is_a) {
        memcpy(k.a, p.src, 16);
        memcpy(k.b, p.dst, 16);
        k.pa = p.sport;
        k.pb = p.dport;
    } else {
        memcpy(k.a, p.dst, 16);
        memcpy(k.b, p.src, 16);
        k.pa = p.dport;
        k.pb = p.sport;
    }
    uint64_t h = key_hash(&k);
    session_t *s = m->n_slots ? table_find(m, &k, h) : NULL;

    int syn_only = (p.tcp_flags & 0x12) == 0x02; /* a SYN without ACK opens a connection */
    if (s && s->closing) {
        /* Within the grace period: a trailing packet joins the closed session (no active
           timeout, it has ended); a new SYN hands it out now and starts the next one. */
        if (!syn_only) return session_add(m, s, &p, packet_dir(s, &p, src_is_a, c), ts_ns, tick);
        if (session_end(m, s, s->end) < 0) return -1;
        s = NULL;
    } else if (s && s->closed) {
        if (!syn_only && tick - s->last_tick < m->idle_ms) {
            m->skipped[SK_AFTER_CLOSE]++;
            s->last_tick = tick;
            list_unlink(&m->lru, s);
            list_push(&m->lru, s);
            return 0;
        }
        session_release(m, s);
        s = NULL;
    } else if (s && tick - s->first_tick >= m->active_ms) {
        if (session_end(m, s, END_ACTIVE) < 0) return -1;
        s = NULL;
    }
    if (!s) {
        if (!(s = session_new(m, &k, h))) return -1;
        s->src_is_a = (uint8_t)src_is_a;
    } else {
        list_unlink(&m->lru, s);
        list_push(&m->lru, s);
    }
    return session_add(m, s, &p, packet_dir(s, &p, src_is_a, c), ts_ns, tick);
}

/* Framer callback: pause once a batch of results is waiting, so Python can consume and
   free them before more are made (fewer young objects for the garbage collector). */
static int meter_record(void *ctx, uint32_t linktype, const uint8_t *data, uint32_t caplen,
                        uint32_t wirelen, int64_t ts_ns)
{
    MeterObject *m = (MeterObject *)ctx;
    (void)wirelen;
    if (meter_packet(m, linktype, data, caplen, ts_ns) < 0) return -1;
    return m->batch && PyList_GET_SIZE(m->out) >= m->batch;
}

/* ------------------------------------------------------------------------------------ */
/* Meter type                                                                           */
/* ------------------------------------------------------------------------------------ */

static void meter_clear_sessions(MeterObject *m)
{
    slist_t *lists[2] = {&m->lru, &m->closing};
    session_t *s;
    for (int i = 0; i < 2; i++) {
        s = lists[i]->head;
        while (s) {
            session_t *n = s->next;
            free(s->kept);
            free(s);
            s = n;
        }
        lists[i]->head = lists[i]->tail = NULL;
    }
    s = m->free_list;
    while (s) {
        session_t *n = s->next;
        free(s);
        s = n;
    }
    m->free_list = NULL;
    free(m->slots);
    m->slots = NULL;
    m->n_slots = m->n_used = 0;
    m->live = 0;
}

static void Meter_dealloc(MeterObject *m)
{
    meter_clear_sessions(m);
    framer_free(&m->fr);
    Py_XDECREF(m->session_cls);
    Py_XDECREF(m->packet_cls);
    Py_XDECREF(m->capture);
    Py_XDECREF(m->out);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static int Meter_init(MeterObject *m, PyObject *args, PyObject *kw)
{
    static char *names[] = {"session_cls", "packet_cls", "capture", "idle_ms", "active_ms",
                            "tcp_close", "decode_tunnels", "keep_packets", "keep_bytes",
                            "events", "ready_packets", "ready_payload", "close_grace_ms", NULL};
    PyObject *scls, *pcls, *cap;
    long long idle, active, grace = 0;
    int tcp_close = 1, tunnels = 0, events = 0, ready_payload = 0;
    unsigned int keep_packets = 0, keep_bytes = 0, ready_packets = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOULL|ppIIpIpL", names, &scls, &pcls, &cap,
                                     &idle, &active, &tcp_close, &tunnels, &keep_packets,
                                     &keep_bytes, &events, &ready_packets, &ready_payload, &grace))
        return -1;
    if (idle <= 0 || active <= 0) {
        PyErr_SetString(PyExc_ValueError, "idle_ms and active_ms must be > 0");
        return -1;
    }
    if (grace < 0) {
        PyErr_SetString(PyExc_ValueError, "close_grace_ms must be >= 0");
        return -1;
    }
    if (events && ready_packets == 0) {
        PyErr_SetString(PyExc_ValueError, "ready_packets must be >= 1 with events");
        return -1;
    }
    if (m->out) {
        PyErr_SetString(PyExc_RuntimeError, "Meter is already initialised");
        return -1;
    }
    m->out = PyList_New(0);
    if (!m->out) return -1;
    Py_INCREF(scls);
    Py_INCREF(pcls);
    Py_INCREF(cap);
    m->session_cls = scls;
    m->packet_cls = pcls;
    m->capture = cap;
    m->idle_ms = idle;
    m->active_ms = active;
    m->grace_ms = grace;
    m->tcp_close = tcp_close;
    m->tunnels = tunnels;
    m->events = events;
    m->ready_packets = ready_packets;
    m->ready_payload = ready_payload;
    m->keep_bytes = keep_bytes;
    m->keep_packets = keep_packets;
    if (events && keep_packets < ready_packets) m->keep_packets = ready_packets;
    m->batch = 256;
    m->fast_session = record_layout(scls, SESSION_FIELDS, 15, m->session_slots);
    m->fast_packet = record_layout(pcls, PACKET_FIELDS, 8, m->packet_slots);
    return 0;
}

static PyObject *take_out(MeterObject *m)
{
    PyObject *r = m->out;
    m->out = PyList_New(0);
    if (!m->out) {
        m->out = r;
        return NULL;
    }
    return r;
}

static PyObject *Meter_feed(MeterObject *m, PyObject *arg)
{
    Py_buffer view;
    if (!m->out) {
        PyErr_SetString(PyExc_RuntimeError, "Meter is not initialised");
        return NULL;
    }
    if (m->finished) {
        PyErr_SetString(PyExc_RuntimeError, "Meter has already finished");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    int r = framer_feed(&m->fr, view.buf, (size_t)view.len, meter_record, m);
    PyBuffer_Release(&view);
    if (r < 0) {
        m->finished = 1;
        return NULL;
    }
    return take_out(m);
}

static PyObject *Meter_finish(MeterObject *m, PyObject *Py_UNUSED(ignored))
{
    if (!m->out) {
        PyErr_SetString(PyExc_RuntimeError, "Meter is not initialised");
        return NULL;
    }
    if (m->finished) {
        PyErr_SetString(PyExc_RuntimeError, "Meter has already finished");
        return NULL;
    }
    m->finished = 1;
    m->batch = 0;
    if (framer_feed(&m->fr, NULL, 0, meter_record, m) < 0) return NULL;
    if (framer_check_end(&m->fr) < 0) return NULL;
    /* Closing sessions first (they ended before the others), each with its close reason. */
    while (m->closing.head) {
        if (session_end(m, m->closing.head, END_END) < 0) return NULL;
    }
    while (m->lru.head) {
        if (session_end(m, m->lru.head, END_END) < 0) return NULL;
    }
    return take_out(m);
}

static PyObject *Meter_stats(MeterObject *m, PyObject *Py_UNUSED(ignored))
{
    PyObject *skipped = PyDict_New();
    if (!skipped) return NULL;
    for (int i = 1; i < N_REASONS; i++) {
        if (!m->skipped[i]) continue;
        PyObject *v = PyLong_FromUnsignedLongLong(m->skipped[i]);
        if (!v || PyDict_SetItemString(skipped, REASON_NAMES[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(skipped);
            return NULL;
        }
        Py_DECREF(v);
    }
    return Py_BuildValue("{s:K,s:K,s:K,s:N,s:K,s:K,s:K,s:K,s:O}", "packets_read", m->read,
                         "packets_in_sessions", m->in_sessions, "sessions", m->sessions,
                         "skipped", skipped, "live_sessions", m->live, "peak_live_sessions",
                         m->peak_live, "tail_bytes",
                         (unsigned long long)(m->fr.len - m->fr.start), "tail_offset",
                         (unsigned long long)m->fr.offset, "fast_records",
                         m->fast_session && m->fast_packet ? Py_True : Py_False);
}

static PyMethodDef Meter_methods[] = {
    {"feed", (PyCFunction)Meter_feed, METH_O,
     "Add capture bytes (may be empty) and return sessions (or events) finished meanwhile; "
     "stops after a batch, so call again with b'' until it returns an empty list."},
    {"finish", (PyCFunction)Meter_finish, METH_NOARGS,
     "End of input: check the file, end every live session and return them."},
    {"stats", (PyCFunction)Meter_stats, METH_NOARGS, "Packet accounting so far, as a dict."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject MeterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "botunet._meter.Meter",
    .tp_basicsize = sizeof(MeterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Capture bytes in, finished bidirectional sessions out.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Meter_init,
    .tp_dealloc = (destructor)Meter_dealloc,
    .tp_methods = Meter_methods,
};

/* ------------------------------------------------------------------------------------ */
/* Framer type: records without decoding, for botunet.pcap.reader.iter_packets           */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    framer_t fr;
    PyObject *out;
    int finished;
} FramerObject;

static int framer_record(void *ctx, uint32_t linktype, const uint8_t *data, uint32_t caplen,
                         uint32_t wirelen, int64_t ts_ns)
{
    FramerObject *f = (FramerObject *)ctx;
    long lt = linktype == LINK_UNKNOWN_IFACE ? -1L : (long)linktype;
    PyObject *t = Py_BuildValue("(Lly#I)", (long long)ts_ns, lt, (const char *)data,
                                (Py_ssize_t)caplen, wirelen);
    if (!t) return -1;
    int r = PyList_Append(f->out, t);
    Py_DECREF(t);
    return r;
}

static void Framer_dealloc(FramerObject *f)
{
    framer_free(&f->fr);
    Py_XDECREF(f->out);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static int Framer_init(FramerObject *f, PyObject *args, PyObject *kw)
{
    static char *names[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "", names)) return -1;
    if (f->out) {
        PyErr_SetString(PyExc_RuntimeError, "Framer is already initialised");
        return -1;
    }
    f->out = PyList_New(0);
    return f->out ? 0 : -1;
}

static PyObject *Framer_feed(FramerObject *f, PyObject *arg)
{
    Py_buffer view;
    if (!f->out || f->finished) {
        PyErr_SetString(PyExc_RuntimeError, "Framer is not usable");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    int r = framer_feed(&f->fr, view.buf, (size_t)view.len, framer_record, f);
    PyBuffer_Release(&view);
    if (r < 0) {
        f->finished = 1;
        return NULL;
    }
    PyObject *out = f->out;
    f->out = PyList_New(0);
    if (!f->out) {
        f->out = out;
        return NULL;
    }
    return out;
}

static PyObject *Framer_finish(FramerObject *f, PyObject *Py_UNUSED(ignored))
{
    if (!f->out || f->finished) {
        PyErr_SetString(PyExc_RuntimeError, "Framer is not usable");
        return NULL;
    }
    f->finished = 1;
    if (framer_check_end(&f->fr) < 0) return NULL;
    return Py_BuildValue("(KK)", (unsigned long long)(f->fr.len - f->fr.start),
                         (unsigned long long)f->fr.offset);
}

static PyMethodDef Framer_methods[] = {
    {"feed", (PyCFunction)Framer_feed, METH_O,
     "Consume capture bytes; return (ts_ns, link_type, data, wire_length) per record."},
    {"finish", (PyCFunction)Framer_finish, METH_NOARGS,
     "End of input: check the file; return (tail_bytes, tail_offset) of a cut last record."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FramerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "botunet._meter.Framer",
    .tp_basicsize = sizeof(FramerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Capture bytes in, raw records out.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Framer_init,
    .tp_dealloc = (destructor)Framer_dealloc,
    .tp_methods = Framer_methods,
};

/* ------------------------------------------------------------------------------------ */
/* decode(): one frame, for tests and inspection                                        */
/* ------------------------------------------------------------------------------------ */

static PyObject *mod_decode(PyObject *Py_UNUSED(mod), PyObject *args, PyObject *kw)
{
    static char *names[] = {"link_type", "frame", "decode_tunnels", NULL};
    unsigned int linktype;
    Py_buffer view;
    int tunnels = 0;
    pkt_t p;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Iy*|p", names, &linktype, &view, &tunnels))
        return NULL;
    int r = decode_frame(linktype, view.buf, (uint32_t)view.len, tunnels, &p);
    PyObject *res;
    if (r != SK_OK) {
        res = Py_BuildValue("(s)", REASON_NAMES[r]);
    } else {
        PyObject *src = format_ip(p.src, p.version), *dst = format_ip(p.dst, p.version);
        if (!src || !dst) {
            Py_XDECREF(src);
            Py_XDECREF(dst);
            PyBuffer_Release(&view);
            return NULL;
        }
        res = Py_BuildValue("(OiiNINIIIIiy#)", Py_None, p.version, p.proto, src,
                            (unsigned)p.sport, dst, (unsigned)p.dport, p.ip_length, p.l4_offset,
                            p.payload_length, p.tcp_flags, (const char *)p.ip,
                            (Py_ssize_t)p.avail);
    }
    PyBuffer_Release(&view);
    return res;
}

static PyMethodDef module_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))mod_decode, METH_VARARGS | METH_KEYWORDS,
     "Decode one frame: (None, version, protocol, src, sport, dst, dport, ip_length, "
     "l4_offset, payload_length, tcp_flags, ip_bytes) or (skip_reason,)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef meter_module = {
    PyModuleDef_HEAD_INIT, "botunet._meter",
    "Capture framing, packet decoding and the session table of botunet, in C.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__meter(void)
{
    if (PyType_Ready(&MeterType) < 0 || PyType_Ready(&FramerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&meter_module);
    if (!m) return NULL;
    FormatError = PyErr_NewException("botunet._meter.FormatError", PyExc_ValueError, NULL);
    if (!FormatError) goto fail;
    for (int i = 0; i < N_ENDS; i++) {
        END_STR[i] = PyUnicode_InternFromString(END_NAMES[i]);
        if (!END_STR[i]) goto fail;
    }
    EVENT_READY = PyUnicode_InternFromString("ready");
    EVENT_END = PyUnicode_InternFromString("end");
    if (!EVENT_READY || !EVENT_END) goto fail;
    PyObject *reasons = PyTuple_New(N_REASONS - 1);
    if (!reasons) goto fail;
    for (int i = 1; i < N_REASONS; i++) {
        PyObject *s = PyUnicode_FromString(REASON_NAMES[i]);
        if (!s) {
            Py_DECREF(reasons);
            goto fail;
        }
        PyTuple_SET_ITEM(reasons, i - 1, s);
    }
    if (PyModule_AddObject(m, "SKIP_REASONS", reasons) < 0) {
        Py_DECREF(reasons);
        goto fail;
    }
    Py_INCREF(FormatError);
    if (PyModule_AddObject(m, "FormatError", FormatError) < 0) goto fail;
    Py_INCREF(&MeterType);
    if (PyModule_AddObject(m, "Meter", (PyObject *)&MeterType) < 0) goto fail;
    Py_INCREF(&FramerType);
    if (PyModule_AddObject(m, "Framer", (PyObject *)&FramerType) < 0) goto fail;
    if (PyModule_AddIntConstant(m, "PCAP_MAX_RECORD", PCAP_MAX_RECORD) < 0) goto fail;
    if (PyModule_AddIntConstant(m, "PCAPNG_MAX_BLOCK", PCAPNG_MAX_BLOCK) < 0) goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
