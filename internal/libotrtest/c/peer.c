/*
 * peer: an OTR peer run by libotr 4.1.1, driven over stdin/stdout by
 * internal/libotrtest/peer.go.
 *
 * Usage: peer ACCOUNT PEERNAME KEYFILE INSTAGFILE POLICY MAXSIZE
 *        peer bench WHAT N [SIZE]      (in-process libotr-to-libotr timing)
 *
 * Every command is one line; every payload is hex so bodies may hold any
 * byte but NUL. Each command's output ends with a line "done". Output lines:
 *   ready INSTAG FINGERPRINT         at start (hex)
 *   out HEX                           a message libotr sends to the peer
 *   show INSTAG HEX                   a message for the user
 *   secure INSTAG VERSION FINGERPRINT gone secure with the peer instance
 *   stillsecure INSTAG                refreshed
 *   insecure INSTAG                   gone insecure
 *   smp EVENT INSTAG PROGRESS [QHEX]  SMP event (ask, askq, progress, success,
 *                                     failure, abort, cheated, error)
 *   event NAME INSTAG                 a libotr message event
 *   symkey USE DATAHEX KEYHEX         the peer announced the extra key
 *   state INSTAG MSGSTATE VERSION     answer to "state"
 *   key HEX                           answer to "symkey"
 *   bench NS CPUNS                    wall and CPU nanoseconds per operation
 *   error TEXT                        a command failed
 * Commands:
 *   query | send HEX | sendto INSTAG HEX | recv HEX | state INSTAG |
 *   smp INSTAG QHEX|- SECRETHEX | smprespond INSTAG SECRETHEX |
 *   smpabort INSTAG | disconnect INSTAG | symkey INSTAG USE DATAHEX | quit
 * INSTAG "best" means OTRL_INSTAG_BEST.
 */
#include <gcrypt.h>
#include <libotr/proto.h>
#include <libotr/message.h>
#include <libotr/privkey.h>
#include <libotr/instag.h>
#include <libotr/userstate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROTO "prpl-jabber"

struct peer {
	OtrlUserState us;
	const char *account, *peername, *keyfile, *instagfile;
	OtrlPolicy policy;
	int maxsize;
	/* In bench mode messages go to a queue instead of stdout. */
	struct queue *q;
};

struct queue {
	char *msg[4096];
	struct peer *to[4096];
	int head, tail;
};

static struct peer *other_of(struct peer *p);
static struct peer *bench_a, *bench_b;

static void put_hex(const unsigned char *b, size_t n)
{
	static const char h[] = "0123456789abcdef";
	size_t i;
	if (n == 0) {
		fputc('-', stdout);
		return;
	}
	for (i = 0; i < n; i++) {
		fputc(h[b[i] >> 4], stdout);
		fputc(h[b[i] & 15], stdout);
	}
}

static int unhex(const char *s, unsigned char **out, size_t *outlen)
{
	size_t n = strlen(s), i;
	unsigned char *b;
	if (strcmp(s, "-") == 0)
		n = 0;
	if (n % 2)
		return -1;
	b = malloc(n / 2 + 1);
	for (i = 0; i < n / 2; i++) {
		unsigned int v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1) {
			free(b);
			return -1;
		}
		b[i] = v;
	}
	b[n / 2] = 0;
	*out = b;
	*outlen = n / 2;
	return 0;
}

static OtrlPolicy cb_policy(void *opdata, ConnContext *ctx)
{
	return ((struct peer *)opdata)->policy;
}

static void cb_create_privkey(void *opdata, const char *account, const char *protocol)
{
	struct peer *p = opdata;
	otrl_privkey_generate(p->us, p->keyfile, account, protocol);
}

static int cb_is_logged_in(void *opdata, const char *a, const char *pr, const char *r)
{
	return 1;
}

static void cb_inject(void *opdata, const char *account, const char *protocol,
		      const char *recipient, const char *message)
{
	struct peer *p = opdata;
	if (!message || !*message)
		return;
	if (p->q) {
		struct queue *q = p->q;
		q->msg[q->tail] = strdup(message);
		q->to[q->tail] = other_of(p);
		q->tail = (q->tail + 1) % 4096;
		return;
	}
	fputs("out ", stdout);
	put_hex((const unsigned char *)message, strlen(message));
	fputc('\n', stdout);
}

static void cb_update(void *opdata) {}
static void cb_new_fp(void *opdata, OtrlUserState us, const char *a, const char *pr,
		      const char *u, unsigned char fp[20]) {}
static void cb_write_fps(void *opdata) {}

static void cb_gone_secure(void *opdata, ConnContext *ctx)
{
	struct peer *p = opdata;
	if (p->q)
		return;
	printf("secure %08x %u ", ctx->their_instance, ctx->protocol_version);
	if (ctx->active_fingerprint)
		put_hex(ctx->active_fingerprint->fingerprint, 20);
	else
		fputc('-', stdout);
	fputc('\n', stdout);
}

static void cb_gone_insecure(void *opdata, ConnContext *ctx)
{
	if (((struct peer *)opdata)->q)
		return;
	printf("insecure %08x\n", ctx->their_instance);
}

static void cb_still_secure(void *opdata, ConnContext *ctx, int is_reply)
{
	if (((struct peer *)opdata)->q)
		return;
	printf("stillsecure %08x\n", ctx->their_instance);
}

static int cb_max_size(void *opdata, ConnContext *ctx)
{
	return ((struct peer *)opdata)->maxsize;
}

static const char *cb_account_name(void *opdata, const char *account, const char *protocol)
{
	return account;
}

static void cb_account_name_free(void *opdata, const char *name) {}

static void cb_symkey(void *opdata, ConnContext *ctx, unsigned int use,
		      const unsigned char *usedata, size_t usedatalen,
		      const unsigned char *symkey)
{
	printf("symkey %u ", use);
	put_hex(usedata, usedatalen);
	fputc(' ', stdout);
	put_hex(symkey, OTRL_EXTRAKEY_BYTES);
	fputc('\n', stdout);
}

static const char *cb_error_message(void *opdata, ConnContext *ctx, OtrlErrorCode code)
{
	switch (code) {
	case OTRL_ERRCODE_ENCRYPTION_ERROR:
		return "Error occurred encrypting message.";
	case OTRL_ERRCODE_MSG_NOT_IN_PRIVATE:
		return "You sent encrypted data to a peer who wasn't expecting it.";
	case OTRL_ERRCODE_MSG_UNREADABLE:
		return "You transmitted an unreadable encrypted message.";
	case OTRL_ERRCODE_MSG_MALFORMED:
		return "You transmitted a malformed data message.";
	default:
		return "error";
	}
}

static void cb_error_message_free(void *opdata, const char *m) {}

/* SMP answers and aborts must not re-enter libotr from a callback. */
static ConnContext *abort_ctx;

static void cb_smp(void *opdata, OtrlSMPEvent ev, ConnContext *ctx,
		   unsigned short progress, char *question)
{
	static const char *names[] = {"none", "error", "abort", "cheated", "askq",
				      "ask", "progress", "success", "failure"};
	struct peer *p = opdata;
	if (p->q)
		return;
	printf("smp %s %08x %u", ev < 9 ? names[ev] : "unknown", ctx->their_instance, progress);
	if (question) {
		fputc(' ', stdout);
		put_hex((unsigned char *)question, strlen(question));
	}
	fputc('\n', stdout);
	if (ev == OTRL_SMPEVENT_CHEATED || ev == OTRL_SMPEVENT_ERROR)
		abort_ctx = ctx;
}

static void cb_msg_event(void *opdata, OtrlMessageEvent ev, ConnContext *ctx,
			 const char *message, gcry_error_t err)
{
	static const char *names[] = {"none", "encryption_required", "encryption_error",
		"connection_ended", "setup_error", "msg_reflected", "msg_resent",
		"rcvdmsg_not_in_private", "rcvdmsg_unreadable", "rcvdmsg_malformed",
		"log_heartbeat_rcvd", "log_heartbeat_sent", "rcvdmsg_general_err",
		"rcvdmsg_unencrypted", "rcvdmsg_unrecognized", "rcvdmsg_for_other_instance"};
	struct peer *p = opdata;
	if (p->q)
		return;
	printf("event %s %08x\n", ev < 16 ? names[ev] : "unknown", ctx ? ctx->their_instance : 0);
}

static void cb_create_instag(void *opdata, const char *account, const char *protocol)
{
	struct peer *p = opdata;
	otrl_instag_generate(p->us, p->instagfile, account, protocol);
}

static void cb_timer(void *opdata, unsigned int interval) {}

static OtrlMessageAppOps ops = {
	.policy = cb_policy,
	.create_privkey = cb_create_privkey,
	.is_logged_in = cb_is_logged_in,
	.inject_message = cb_inject,
	.update_context_list = cb_update,
	.new_fingerprint = cb_new_fp,
	.write_fingerprints = cb_write_fps,
	.gone_secure = cb_gone_secure,
	.gone_insecure = cb_gone_insecure,
	.still_secure = cb_still_secure,
	.max_message_size = cb_max_size,
	.account_name = cb_account_name,
	.account_name_free = cb_account_name_free,
	.received_symkey = cb_symkey,
	.otr_error_message = cb_error_message,
	.otr_error_message_free = cb_error_message_free,
	.handle_smp_event = cb_smp,
	.handle_msg_event = cb_msg_event,
	.create_instag = cb_create_instag,
	.timer_control = cb_timer,
};

static struct peer *other_of(struct peer *p)
{
	return p == bench_a ? bench_b : bench_a;
}

static int setup(struct peer *p)
{
	FILE *f;
	p->us = otrl_userstate_create();
	f = fopen(p->keyfile, "r");
	if (f) {
		fclose(f);
		otrl_privkey_read(p->us, p->keyfile);
	}
	if (!otrl_privkey_find(p->us, p->account, PROTO)) {
		if (otrl_privkey_generate(p->us, p->keyfile, p->account, PROTO))
			return -1;
	}
	f = fopen(p->instagfile, "r");
	if (f) {
		fclose(f);
		otrl_instag_read(p->us, p->instagfile);
	}
	if (!otrl_instag_find(p->us, p->account, PROTO) &&
	    otrl_instag_generate(p->us, p->instagfile, p->account, PROTO))
		return -1;
	return 0;
}

static otrl_instag_t parse_instag(const char *s)
{
	if (strcmp(s, "best") == 0)
		return OTRL_INSTAG_BEST;
	return (otrl_instag_t)strtoul(s, NULL, 16);
}

static ConnContext *find_ctx(struct peer *p, const char *tag)
{
	return otrl_context_find(p->us, p->peername, p->account, PROTO, parse_instag(tag),
				 0, NULL, NULL, NULL);
}

static void do_send(struct peer *p, otrl_instag_t tag, const char *msg)
{
	char *newmsg = NULL;
	ConnContext *ctx = NULL;
	gcry_error_t err = otrl_message_sending(p->us, &ops, p, p->account, PROTO, p->peername,
						tag, msg, NULL, &newmsg, OTRL_FRAGMENT_SEND_ALL,
						&ctx, NULL, NULL);
	if (err) {
		if (!p->q)
			printf("error sending: %s\n", gcry_strerror(err));
	} else if (!newmsg) {
		/* libotr leaves the message alone: send it as it is. */
		cb_inject(p, p->account, PROTO, p->peername, msg);
	}
	otrl_message_free(newmsg);
}

static void do_recv(struct peer *p, const char *msg)
{
	char *newmsg = NULL;
	OtrlTLV *tlvs = NULL;
	ConnContext *ctx = NULL;
	int ignore = otrl_message_receiving(p->us, &ops, p, p->account, PROTO, p->peername,
					    msg, &newmsg, &tlvs, &ctx, NULL, NULL);
	if (!ignore && !p->q) {
		const char *show = newmsg ? newmsg : msg;
		printf("show %08x ", ctx ? ctx->their_instance : 0);
		put_hex((const unsigned char *)show, strlen(show));
		fputc('\n', stdout);
	}
	otrl_tlv_free(tlvs);
	otrl_message_free(newmsg);
	if (abort_ctx) {
		otrl_message_abort_smp(p->us, &ops, p, abort_ctx);
		abort_ctx = NULL;
	}
}

/* ---- in-process benchmarks: two libotr peers joined by a queue ---- */

static struct queue benchq;

static void pump(void)
{
	while (benchq.head != benchq.tail) {
		char *m = benchq.msg[benchq.head];
		struct peer *to = benchq.to[benchq.head];
		benchq.head = (benchq.head + 1) % 4096;
		do_recv(to, m);
		free(m);
	}
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* CPU time of the process: what a benchmark on a shared, loaded machine
 * can compare fairly. */
static double cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double c0;

static void report(double t0, int n)
{
	printf("bench %.0f %.0f\n", (now_ns() - t0) / n, (cpu_ns() - c0) / n);
}

static char benchdir[] = "/tmp/otrbenchXXXXXX";

static int bench_run(int argc, char **argv);

/* bench runs bench_run in a temporary directory it removes afterwards. */
static int bench(int argc, char **argv)
{
	char path[300];
	const char *names[] = {"a.key", "b.key", "a.instag", "b.instag"};
	int rc, i;
	if (!mkdtemp(benchdir))
		return 1;
	rc = bench_run(argc, argv);
	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", benchdir, names[i]);
		unlink(path);
	}
	rmdir(benchdir);
	return rc;
}

static int bench_run(int argc, char **argv)
{
	static struct peer a, b;
	const char *dir = benchdir;
	char ka[300], kb[300], ia[300], ib[300];
	const char *what = argv[2];
	int n = atoi(argv[3]), size = argc > 4 ? atoi(argv[4]) : 100, i;
	double t0;
	char *msg;
	ConnContext *ctx;

	snprintf(ka, sizeof ka, "%s/a.key", dir);
	snprintf(kb, sizeof kb, "%s/b.key", dir);
	snprintf(ia, sizeof ia, "%s/a.instag", dir);
	snprintf(ib, sizeof ib, "%s/b.instag", dir);
	a = (struct peer){.account = "a@example.org", .peername = "b@example.org", .keyfile = ka,
			  .instagfile = ia, .policy = OTRL_POLICY_DEFAULT, .q = &benchq};
	b = (struct peer){.account = "b@example.org", .peername = "a@example.org", .keyfile = kb,
			  .instagfile = ib, .policy = OTRL_POLICY_DEFAULT, .q = &benchq};
	bench_a = &a;
	bench_b = &b;
	if (strcmp(what, "keygen") == 0) {
		a.us = otrl_userstate_create();
		t0 = now_ns();
		c0 = cpu_ns();
		for (i = 0; i < n; i++)
			otrl_privkey_generate(a.us, ka, "a@example.org", PROTO);
		report(t0, n);
		return 0;
	}
	if (setup(&a) || setup(&b))
		return 1;
	if (strcmp(what, "ake") == 0) {
		t0 = now_ns();
		c0 = cpu_ns();
		for (i = 0; i < n; i++) {
			do_send(&a, OTRL_INSTAG_BEST, "?OTRv3?");
			pump();
		}
		report(t0, n);
		return 0;
	}
	do_send(&a, OTRL_INSTAG_BEST, "?OTRv3?");
	pump();
	ctx = otrl_context_find(a.us, "b@example.org", "a@example.org", PROTO, OTRL_INSTAG_BEST, 0, NULL, NULL, NULL);
	if (!ctx || ctx->msgstate != OTRL_MSGSTATE_ENCRYPTED)
		return 1;
	if (strcmp(what, "data") == 0) {
		msg = malloc(size + 1);
		memset(msg, 'x', size);
		msg[size] = 0;
		t0 = now_ns();
		c0 = cpu_ns();
		for (i = 0; i < n; i++) {
			do_send(&a, OTRL_INSTAG_BEST, msg);
			pump();
			do_send(&b, OTRL_INSTAG_BEST, msg);
			pump();
		}
		report(t0, n);
		return 0;
	}
	if (strcmp(what, "smp") == 0) {
		ConnContext *cb;
		t0 = now_ns();
		c0 = cpu_ns();
		for (i = 0; i < n; i++) {
			otrl_message_initiate_smp(a.us, &ops, &a, ctx, (const unsigned char *)"s", 1);
			pump();
			cb = otrl_context_find(b.us, "a@example.org", "b@example.org", PROTO, OTRL_INSTAG_BEST, 0, NULL, NULL, NULL);
			otrl_message_respond_smp(b.us, &ops, &b, cb, (const unsigned char *)"s", 1);
			pump();
		}
		report(t0, n);
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	static struct peer p;
	char *line = NULL;
	size_t cap = 0;
	unsigned char fp[20];
	OtrlInsTag *it;

	OTRL_INIT;
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	if (argc >= 4 && strcmp(argv[1], "bench") == 0) {
		int rc = bench(argc, argv);
		fflush(stdout);
		return rc;
	}
	if (argc != 7) {
		fprintf(stderr, "usage: peer ACCOUNT PEERNAME KEYFILE INSTAGFILE POLICY MAXSIZE\n");
		return 2;
	}
	p.account = argv[1];
	p.peername = argv[2];
	p.keyfile = argv[3];
	p.instagfile = argv[4];
	p.policy = strtoul(argv[5], NULL, 0);
	p.maxsize = atoi(argv[6]);
	if (setup(&p)) {
		fprintf(stderr, "peer: cannot set up keys\n");
		return 1;
	}
	it = otrl_instag_find(p.us, p.account, PROTO);
	otrl_privkey_fingerprint_raw(p.us, fp, p.account, PROTO);
	printf("ready %08x ", it ? it->instag : 0);
	put_hex(fp, 20);
	printf("\n");
	fflush(stdout);

	while (getline(&line, &cap, stdin) > 0) {
		char *argvv[5] = {0};
		int n = 0;
		char *tok = strtok(line, " \n");
		while (tok && n < 5) {
			argvv[n++] = tok;
			tok = strtok(NULL, " \n");
		}
		if (n == 0)
			continue;
		if (strcmp(argvv[0], "quit") == 0)
			break;
		if (strcmp(argvv[0], "query") == 0) {
			do_send(&p, OTRL_INSTAG_BEST, "?OTR?");
		} else if ((strcmp(argvv[0], "send") == 0 && n == 2) ||
			   (strcmp(argvv[0], "sendto") == 0 && n == 3)) {
			unsigned char *m;
			size_t ml;
			int two = argvv[0][4] == 't';
			if (unhex(argvv[two ? 2 : 1], &m, &ml) == 0) {
				do_send(&p, two ? parse_instag(argvv[1]) : OTRL_INSTAG_BEST, (char *)m);
				free(m);
			} else
				printf("error bad hex\n");
		} else if (strcmp(argvv[0], "recv") == 0 && n == 2) {
			unsigned char *m;
			size_t ml;
			if (unhex(argvv[1], &m, &ml) == 0) {
				do_recv(&p, (char *)m);
				free(m);
			} else
				printf("error bad hex\n");
		} else if (strcmp(argvv[0], "state") == 0 && n == 2) {
			ConnContext *ctx = find_ctx(&p, argvv[1]);
			if (ctx)
				printf("state %08x %d %u\n", ctx->their_instance, ctx->msgstate, ctx->protocol_version);
			else
				printf("error no context\n");
		} else if ((strcmp(argvv[0], "smp") == 0 && n == 4) ||
			   (strcmp(argvv[0], "smprespond") == 0 && n == 3)) {
			ConnContext *ctx = find_ctx(&p, argvv[1]);
			unsigned char *q = NULL, *s;
			size_t ql, sl;
			int respond = n == 3;
			if (!ctx) {
				printf("error no context\n");
			} else if ((!respond && unhex(argvv[2], &q, &ql)) ||
				   unhex(argvv[respond ? 2 : 3], &s, &sl)) {
				printf("error bad hex\n");
			} else {
				if (respond)
					otrl_message_respond_smp(p.us, &ops, &p, ctx, s, sl);
				else if (ql)
					otrl_message_initiate_smp_q(p.us, &ops, &p, ctx, (char *)q, s, sl);
				else
					otrl_message_initiate_smp(p.us, &ops, &p, ctx, s, sl);
				free(s);
			}
			free(q);
		} else if (strcmp(argvv[0], "smpabort") == 0 && n == 2) {
			ConnContext *ctx = find_ctx(&p, argvv[1]);
			if (ctx)
				otrl_message_abort_smp(p.us, &ops, &p, ctx);
			else
				printf("error no context\n");
		} else if (strcmp(argvv[0], "disconnect") == 0 && n == 2) {
			otrl_message_disconnect(p.us, &ops, &p, p.account, PROTO, p.peername,
						parse_instag(argvv[1]));
		} else if (strcmp(argvv[0], "symkey") == 0 && n == 4) {
			ConnContext *ctx = find_ctx(&p, argvv[1]);
			unsigned char *d, key[OTRL_EXTRAKEY_BYTES];
			size_t dl;
			if (!ctx || unhex(argvv[3], &d, &dl)) {
				printf("error no context\n");
			} else {
				if (otrl_message_symkey(p.us, &ops, &p, ctx, atoi(argvv[2]), d, dl, key) == 0) {
					printf("key ");
					put_hex(key, sizeof key);
					printf("\n");
				} else
					printf("error symkey\n");
				free(d);
			}
		} else {
			printf("error unknown command\n");
		}
		printf("done\n");
		fflush(stdout);
	}
	free(line);
	return 0;
}
