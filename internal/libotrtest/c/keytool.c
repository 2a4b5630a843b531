/*
 * keytool: the libotr side of otrdesk's tests of the OTR wire format and
 * key files. Each subcommand calls libotr 4.1.1 and prints what libotr
 * reports, one tab-separated record per line; binary-unsafe values are
 * printed as hex. Errors go to stderr with exit status 1.
 *
 *   fingerprint FILE                  read an otr.private_key, print every key's fingerprint
 *   fingerprint-many                  the same for each file named on stdin
 *   generate FILE ACCOUNT PROTOCOL    add a new key for ACCOUNT to FILE (keeping the others)
 *   genbench N                        generate N DSA keys, print the nanoseconds spent
 *   instags FILE                      read an instance-tag file, print every tag
 *   instag-generate FILE ACCOUNT PROTOCOL
 *   fingerprints IN OUT               read a fingerprints file, print it, write it to OUT
 *   classify                          classify hex-encoded bodies read from stdin
 *   accumulate                        feed hex-encoded bodies from stdin to
 *                                     otrl_proto_fragment_accumulate (empty line: new context)
 *   record MMS PRIVKEYFILE [2]        an AKE and data messages between two libotr
 *                                     instances with maximum message size MMS (0: none),
 *                                     speaking OTR version 3 or, with "2", only version 2
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <gcrypt.h>
#include <libotr/proto.h>
#include <libotr/userstate.h>
#include <libotr/privkey.h>
#include <libotr/message.h>
#include <libotr/instag.h>
#include <libotr/context.h>

static void die(const char *what, gcry_error_t err)
{
    fprintf(stderr, "keytool: %s: %s\n", what, err ? gcry_strerror(err) : "failed");
    exit(1);
}

static void print_hex(const char *s)
{
    for (; *s; s++) printf("%02x", (unsigned char)*s);
}

static char *from_hex(const char *h)
{
    size_t n = strlen(h) / 2, i;
    char *s = malloc(n + 1);
    for (i = 0; i < n; i++) {
        unsigned int v;
        sscanf(h + 2 * i, "%2x", &v);
        s[i] = (char)v;
    }
    s[n] = 0;
    return s;
}

static const char *type_name(OtrlMessageType t)
{
    switch (t) {
    case OTRL_MSGTYPE_NOTOTR: return "NOTOTR";
    case OTRL_MSGTYPE_TAGGEDPLAINTEXT: return "TAGGEDPLAINTEXT";
    case OTRL_MSGTYPE_QUERY: return "QUERY";
    case OTRL_MSGTYPE_DH_COMMIT: return "DH_COMMIT";
    case OTRL_MSGTYPE_DH_KEY: return "DH_KEY";
    case OTRL_MSGTYPE_REVEALSIG: return "REVEALSIG";
    case OTRL_MSGTYPE_SIGNATURE: return "SIGNATURE";
    case OTRL_MSGTYPE_V1_KEYEXCH: return "V1_KEYEXCH";
    case OTRL_MSGTYPE_DATA: return "DATA";
    case OTRL_MSGTYPE_ERROR: return "ERROR";
    case OTRL_MSGTYPE_UNKNOWN: return "UNKNOWN";
    }
    return "?";
}

/* offered returns the versions a query or whitespace tag offers, as bits
 * 1<<v, asking libotr's best-version functions one version at a time. */
static unsigned int offered(const char *msg, OtrlMessageType t)
{
    static const OtrlPolicy allow[] = {0, OTRL_POLICY_ALLOW_V1, OTRL_POLICY_ALLOW_V2, OTRL_POLICY_ALLOW_V3};
    unsigned int v, bits = 0;
    for (v = 1; v <= 3; v++) {
        const char *start, *end;
        unsigned int best = t == OTRL_MSGTYPE_QUERY ?
            otrl_proto_query_bestversion(msg, allow[v]) :
            otrl_proto_whitespace_bestversion(msg, &start, &end, allow[v]);
        if (best == v) bits |= 1u << v;
    }
    return bits;
}

/* print_class prints libotr's view of one body: its type, version and
 * instance tags, as otrl_message_receiving finds them, fragment k and n
 * (0 for anything but a fragment) and the versions a query or whitespace
 * tag offers. A fragment is recognised first, with the sscanf formats of
 * libotr's message.c and proto.c. */
static void print_class(const char *msg)
{
    unsigned int from = 0, to = 0;
    unsigned short k = 0, n = 0;
    const char *tag = strstr(msg, "?OTR");
    if (tag && strstr(msg, "?OTR|")) {
        const char *f = strstr(msg, "?OTR|");
        sscanf(tag, "?OTR|%x|%x,", &from, &to);
        sscanf(f, "?OTR|%*x|%*x,%hu,%hu,", &k, &n);
        printf("FRAGMENT\t3\t%08x\t%08x\t%u\t%u\t0", from, to, k, n);
        return;
    }
    if (tag && strstr(msg, "?OTR,")) {
        sscanf(strstr(msg, "?OTR,"), "?OTR,%hu,%hu,", &k, &n);
        printf("FRAGMENT\t2\t0\t0\t%u\t%u\t0", k, n);
        return;
    }
    OtrlMessageType t = otrl_proto_message_type(msg);
    int version = otrl_proto_message_version(msg);
    if (version == 3 && tag && otrl_proto_instance(tag, &from, &to)) {
        from = to = 0xffffffff; /* libotr could not read the tags */
    }
    unsigned int bits = 0;
    if (t == OTRL_MSGTYPE_QUERY || t == OTRL_MSGTYPE_TAGGEDPLAINTEXT) bits = offered(msg, t);
    printf("%s\t%d\t%08x\t%08x\t0\t0\t%u", type_name(t), version, from, to, bits);
}

static void cmd_fingerprint(const char *file)
{
    OtrlUserState us = otrl_userstate_create();
    gcry_error_t err = otrl_privkey_read(us, file);
    if (err) die("otrl_privkey_read", err);
    OtrlPrivKey *p;
    for (p = us->privkey_root; p; p = p->next) {
        char human[OTRL_PRIVKEY_FPRINT_HUMAN_LEN];
        if (!otrl_privkey_fingerprint(us, human, p->accountname, p->protocol))
            die("otrl_privkey_fingerprint", 0);
        printf("KEY\t%s\t%s\t%s\n", p->accountname, p->protocol, human);
    }
}

/* cmd_fingerprint_many reads file names from stdin, one a line, and for
 * each prints FILE and then its keys (KEY lines) or its error (ERR). */
static void cmd_fingerprint_many(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n') line[--len] = 0;
        OtrlUserState us = otrl_userstate_create();
        gcry_error_t err = otrl_privkey_read(us, line);
        printf("FILE\t%s\n", line);
        if (err) {
            printf("ERR\t%s\n", gcry_strerror(err));
        } else {
            OtrlPrivKey *p;
            for (p = us->privkey_root; p; p = p->next) {
                char human[OTRL_PRIVKEY_FPRINT_HUMAN_LEN];
                if (!otrl_privkey_fingerprint(us, human, p->accountname, p->protocol))
                    die("otrl_privkey_fingerprint", 0);
                printf("KEY\t%s\t%s\t%s\n", p->accountname, p->protocol, human);
            }
        }
        otrl_userstate_free(us);
    }
    free(line);
}

static void cmd_generate(const char *file, const char *account, const char *protocol)
{
    OtrlUserState us = otrl_userstate_create();
    if (access(file, F_OK) == 0) {
        gcry_error_t err = otrl_privkey_read(us, file);
        if (err) die("otrl_privkey_read", err);
    }
    gcry_error_t err = otrl_privkey_generate(us, file, account, protocol);
    if (err) die("otrl_privkey_generate", err);
    char human[OTRL_PRIVKEY_FPRINT_HUMAN_LEN];
    if (!otrl_privkey_fingerprint(us, human, account, protocol))
        die("otrl_privkey_fingerprint", 0);
    printf("KEY\t%s\t%s\t%s\n", account, protocol, human);
}

static void cmd_genbench(int n)
{
    OtrlUserState us = otrl_userstate_create();
    struct timespec a, b;
    long long total = 0;
    int i;
    for (i = 0; i < n; i++) {
        void *newkey = NULL;
        char account[32];
        snprintf(account, sizeof account, "bench%d@example.org", i);
        gcry_error_t err = otrl_privkey_generate_start(us, account, "prpl-jabber", &newkey);
        if (err || !newkey) die("otrl_privkey_generate_start", err);
        clock_gettime(CLOCK_MONOTONIC, &a);
        err = otrl_privkey_generate_calculate(newkey);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (err) die("otrl_privkey_generate_calculate", err);
        otrl_privkey_generate_cancelled(us, newkey);
        total += (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    }
    printf("NS\t%lld\n", total);
}

static void cmd_instags(const char *file)
{
    OtrlUserState us = otrl_userstate_create();
    gcry_error_t err = otrl_instag_read(us, file);
    if (err) die("otrl_instag_read", err);
    OtrlInsTag *p;
    for (p = us->instag_root; p; p = p->next)
        printf("INSTAG\t%s\t%s\t%08x\n", p->accountname, p->protocol, p->instag);
}

static void cmd_instag_generate(const char *file, const char *account, const char *protocol)
{
    OtrlUserState us = otrl_userstate_create();
    if (access(file, F_OK) == 0) {
        gcry_error_t err = otrl_instag_read(us, file);
        if (err) die("otrl_instag_read", err);
    }
    gcry_error_t err = otrl_instag_generate(us, file, account, protocol);
    if (err) die("otrl_instag_generate", err);
    cmd_instags(file);
}

static void cmd_fingerprints(const char *in, const char *out)
{
    OtrlUserState us = otrl_userstate_create();
    gcry_error_t err = otrl_privkey_read_fingerprints(us, in, NULL, NULL);
    if (err) die("otrl_privkey_read_fingerprints", err);
    ConnContext *c;
    for (c = us->context_root; c; c = c->next) {
        Fingerprint *f;
        if (c->their_instance != OTRL_INSTAG_MASTER) continue;
        for (f = c->fingerprint_root.next; f; f = f->next) {
            int i;
            printf("FPR\t%s\t%s\t%s\t", c->username, c->accountname, c->protocol);
            for (i = 0; i < 20; i++) printf("%02x", f->fingerprint[i]);
            printf("\t%s\n", f->trust ? f->trust : "");
        }
    }
    err = otrl_privkey_write_fingerprints(us, out);
    if (err) die("otrl_privkey_write_fingerprints", err);
}

static void cmd_classify(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n') line[--len] = 0;
        char *msg = from_hex(line);
        printf("CLASS\t");
        print_class(msg);
        printf("\n");
        free(msg);
    }
    free(line);
}

/* cmd_accumulate feeds hex-encoded bodies read from stdin to
 * otrl_proto_fragment_accumulate on one context; an empty line starts a
 * new context. For each body it prints the result and, when complete,
 * the joined message in hex. */
static void cmd_accumulate(void)
{
    OtrlUserState us = otrl_userstate_create();
    ConnContext *ctx = NULL;
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n') line[--len] = 0;
        if (len == 0 || !ctx) {
            char name[32];
            snprintf(name, sizeof name, "c%d", n++);
            ctx = otrl_context_find(us, name, "a", "p", OTRL_INSTAG_MASTER, 1, NULL, NULL, NULL);
            if (len == 0) continue;
        }
        char *msg = from_hex(line);
        char *joined = NULL;
        switch (otrl_proto_fragment_accumulate(&joined, ctx, msg)) {
        case OTRL_FRAGMENT_UNFRAGMENTED: printf("ACC\tUNFRAGMENTED\t\n"); break;
        case OTRL_FRAGMENT_INCOMPLETE: printf("ACC\tINCOMPLETE\t\n"); break;
        case OTRL_FRAGMENT_COMPLETE:
            printf("ACC\tCOMPLETE\t");
            print_hex(joined);
            printf("\n");
            free(joined);
            break;
        }
        free(msg);
    }
    free(line);
}

/* The record subcommand: two libotr instances, alice and bob, exchange
 * messages through an in-memory queue. Every message either injects is
 * printed as it crosses the wire (WIRE), with libotr's classification;
 * fragments are also fed to otrl_proto_fragment_accumulate on a scratch
 * context per receiver, and a completed message is printed (JOINED). Every
 * message otrl_message_sending produced before fragmenting is printed
 * (SENT), so that our fragmentation can be compared with libotr's. */

struct peer {
    const char *name;       /* account */
    OtrlUserState us;
    ConnContext *scratch;   /* for otrl_proto_fragment_accumulate */
};

static struct peer alice, bob;
static int mms;
static OtrlPolicy policy = OTRL_POLICY_OPPORTUNISTIC;
static char *queue[4096];
static const char *queue_to[4096];
static int qhead, qtail;

static struct peer *peer_named(const char *name)
{
    return strcmp(name, alice.name) == 0 ? &alice : &bob;
}

static OtrlPolicy op_policy(void *opdata, ConnContext *context)
{
    (void)opdata; (void)context;
    return policy;
}

static int op_is_logged_in(void *opdata, const char *a, const char *p, const char *r)
{
    (void)opdata; (void)a; (void)p; (void)r;
    return 1;
}

static void op_inject(void *opdata, const char *account, const char *protocol,
        const char *recipient, const char *message)
{
    (void)opdata; (void)protocol;
    if (qtail == 4096) die("record: queue full", 0);
    printf("WIRE\t%s\t%s\t", account, recipient);
    print_hex(message);
    printf("\t");
    print_class(message);
    printf("\n");
    queue[qtail] = strdup(message);
    queue_to[qtail] = recipient;
    qtail++;
}

static int op_max_message_size(void *opdata, ConnContext *context)
{
    (void)opdata; (void)context;
    return mms;
}

static void op_create_instag(void *opdata, const char *account, const char *protocol)
{
    (void)opdata;
    struct peer *p = peer_named(account);
    FILE *f = tmpfile();
    gcry_error_t err = otrl_instag_generate_FILEp(p->us, f, account, protocol);
    fclose(f);
    if (err) die("otrl_instag_generate_FILEp", err);
}

static const char *op_error_message(void *opdata, ConnContext *context, OtrlErrorCode code)
{
    (void)opdata; (void)context;
    return code == OTRL_ERRCODE_MSG_NOT_IN_PRIVATE ? "not in private" : "error";
}

static OtrlMessageAppOps ops;

static void deliver_all(void)
{
    while (qhead < qtail) {
        char *msg = queue[qhead];
        struct peer *to = peer_named(queue_to[qhead]);
        struct peer *from = to == &alice ? &bob : &alice;
        qhead++;
        if (strstr(msg, "?OTR|") || strstr(msg, "?OTR,")) {
            char *joined = NULL;
            if (otrl_proto_fragment_accumulate(&joined, to->scratch, msg) == OTRL_FRAGMENT_COMPLETE) {
                printf("JOINED\t%s\t", to->name);
                print_hex(joined);
                printf("\t");
                print_class(joined);
                printf("\n");
                free(joined);
            }
        }
        char *newmsg = NULL;
        OtrlTLV *tlvs = NULL;
        otrl_message_receiving(to->us, &ops, NULL, to->name, "prpl-jabber", from->name,
                msg, &newmsg, &tlvs, NULL, NULL, NULL);
        if (newmsg) {
            printf("SHOWN\t%s\t", to->name);
            print_hex(newmsg);
            printf("\n");
        }
        otrl_message_free(newmsg);
        otrl_tlv_free(tlvs);
        free(msg);
    }
}

static void send_msg(struct peer *from, struct peer *to, const char *text)
{
    char *out = NULL;
    gcry_error_t err = otrl_message_sending(from->us, &ops, NULL, from->name, "prpl-jabber",
            to->name, OTRL_INSTAG_BEST, text, NULL, &out, OTRL_FRAGMENT_SEND_ALL, NULL, NULL, NULL);
    if (err) die("otrl_message_sending", err);
    if (out) {
        printf("SENT\t%s\t", from->name);
        print_hex(out);
        printf("\n");
    }
    otrl_message_free(out);
    deliver_all();
}

static void cmd_record(int maxsize, const char *keyfile, int version)
{
    if (version == 2) policy &= ~OTRL_POLICY_ALLOW_V3;
    OtrlUserState scratch = otrl_userstate_create();
    mms = maxsize;
    ops.policy = op_policy;
    ops.is_logged_in = op_is_logged_in;
    ops.inject_message = op_inject;
    ops.max_message_size = op_max_message_size;
    ops.create_instag = op_create_instag;
    ops.otr_error_message = op_error_message;
    alice.name = "alice@example.org";
    bob.name = "bob@example.org";
    alice.us = otrl_userstate_create();
    bob.us = otrl_userstate_create();
    /* Both read the same key file, which holds a key for each. */
    gcry_error_t err = otrl_privkey_read(alice.us, keyfile);
    if (!err) err = otrl_privkey_read(bob.us, keyfile);
    if (err) die("otrl_privkey_read", err);
    alice.scratch = otrl_context_find(scratch, "s", "alice", "p", OTRL_INSTAG_MASTER, 1, NULL, NULL, NULL);
    bob.scratch = otrl_context_find(scratch, "s", "bob", "p", OTRL_INSTAG_MASTER, 1, NULL, NULL, NULL);

    /* A query message as libotr writes it. */
    char *q = otrl_proto_default_query_msg(alice.name, policy);
    printf("QUERY\t");
    print_hex(q);
    printf("\t");
    print_class(q);
    printf("\n");
    free(q);

    /* Plaintext from alice carries the whitespace tag; bob starts the AKE. */
    send_msg(&alice, &bob, "hello bob");
    /* Data both ways, short and long. */
    send_msg(&alice, &bob, "hi, encrypted");
    send_msg(&bob, &alice, "hello alice, encrypted too");
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    send_msg(&alice, &bob, big);
    send_msg(&bob, &alice, big + 1000);
    /* Bob forgets the session silently: alice's next Data message gets an
     * OTR error, which makes alice start a new AKE. */
    ConnContext *c = otrl_context_find(bob.us, alice.name, bob.name, "prpl-jabber",
            OTRL_INSTAG_BEST, 0, NULL, NULL, NULL);
    if (!c) die("no context for alice", 0);
    otrl_context_force_plaintext(c);
    send_msg(&alice, &bob, "are you still there?");
    send_msg(&bob, &alice, "yes, encrypted again");
    /* Bob ends the conversation with a disconnect TLV. */
    otrl_message_disconnect_all_instances(bob.us, &ops, NULL, bob.name, "prpl-jabber", alice.name);
    deliver_all();
}

int main(int argc, char **argv)
{
    OTRL_INIT;
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc == 3 && !strcmp(argv[1], "fingerprint")) cmd_fingerprint(argv[2]);
    else if (argc == 2 && !strcmp(argv[1], "fingerprint-many")) cmd_fingerprint_many();
    else if (argc == 5 && !strcmp(argv[1], "generate")) cmd_generate(argv[2], argv[3], argv[4]);
    else if (argc == 3 && !strcmp(argv[1], "genbench")) cmd_genbench(atoi(argv[2]));
    else if (argc == 3 && !strcmp(argv[1], "instags")) cmd_instags(argv[2]);
    else if (argc == 5 && !strcmp(argv[1], "instag-generate")) cmd_instag_generate(argv[2], argv[3], argv[4]);
    else if (argc == 4 && !strcmp(argv[1], "fingerprints")) cmd_fingerprints(argv[2], argv[3]);
    else if (argc == 2 && !strcmp(argv[1], "classify")) cmd_classify();
    else if (argc == 2 && !strcmp(argv[1], "accumulate")) cmd_accumulate();
    else if (argc == 4 && !strcmp(argv[1], "record")) cmd_record(atoi(argv[2]), argv[3], 3);
    else if (argc == 5 && !strcmp(argv[1], "record")) cmd_record(atoi(argv[2]), argv[3], atoi(argv[4]));
    else {
        fprintf(stderr, "keytool: unknown command\n");
        return 2;
    }
    fflush(stdout);
    return 0;
}
