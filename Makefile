# LuminaGuard build.
#
#   make                 build/bin/luminaguard and build/bin/lg-agent (static)
#   make SAN=1           the same with ASan+UBSan into build-san/ (host binary only;
#                        the guest agent stays static and unsanitised)
#   make check           the whole suite (tests/run-all.sh): format, unit, fuzz, integration
#   make unit            unit tests only (no root, no VM)
#   make fuzz            libFuzzer build of the frame codec, run for FUZZ_SECONDS
#   make format          clang-format in place; make format-check verifies
#   make install         PREFIX=/usr/local

CC       ?= gcc
PREFIX   ?= /usr/local
SAN      ?= 0
FUZZ_SECONDS ?= 30
V        ?= 0
ifeq ($(V),0)
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2);
else
  Q :=
  say =
endif

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wwrite-strings -Wundef -Wswitch-enum -Wno-switch-default -Werror
VERSION := 0.1.0
BASE_CFLAGS := -DLG_VERSION=\"$(VERSION)\" -ffile-prefix-map=$(CURDIR)=. -std=gnu11 -O2 -g $(WARN) -Isrc -D_GNU_SOURCE -fno-strict-aliasing \
        -fstack-protector-strong -D_FORTIFY_SOURCE=2 -MMD -MP

ifeq ($(SAN),1)
  B := build-san
  SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  HOST_CFLAGS := $(filter-out -O2 -D_FORTIFY_SOURCE=2,$(BASE_CFLAGS)) -O1 $(SAN_FLAGS)
  HOST_LDFLAGS := $(SAN_FLAGS)
else
  B := build
  HOST_CFLAGS := $(BASE_CFLAGS)
  HOST_LDFLAGS :=
endif

# The agent is always a plain static binary: it runs inside the guest.
AGENT_CFLAGS := $(BASE_CFLAGS) -Os
AGENT_LDFLAGS := -static

HOST_LIBS := -ljansson -lcrypto -lseccomp -larchive -lncursesw -ltinfo -lmicrohttpd -lcurl

COMMON_SRC  := $(wildcard src/common/*.c)
PROTO_SRC   := $(wildcard src/proto/*.c)
AGENT_SRC   := $(wildcard src/agent/*.c)
HOSTLIB_SRC := $(wildcard src/audit/*.c src/policy/*.c src/jail/*.c src/net/*.c src/vmm/*.c src/sandbox/*.c src/image/*.c src/bench/*.c src/pool/*.c src/tui/*.c src/workspace/*.c src/run/*.c src/mcp/*.c) \
               $(filter-out src/cli/main.c,$(wildcard src/cli/*.c))
MAIN_SRC    := src/cli/main.c
UNIT_SRC    := $(wildcard tests/unit/test_*.c)

host_obj  = $(patsubst %.c,$(B)/obj/%.o,$(1))
agent_obj = $(patsubst %.c,$(B)/agent-obj/%.o,$(1))

HOSTLIB_OBJ := $(call host_obj,$(COMMON_SRC) $(PROTO_SRC) $(HOSTLIB_SRC))
AGENT_OBJ   := $(call agent_obj,$(COMMON_SRC) $(PROTO_SRC) $(AGENT_SRC))
UNIT_BIN    := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))

.PHONY: all unit check check-san fuzz format format-check install clean
all: $(B)/bin/luminaguard $(B)/bin/lg-agent

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(HOST_CFLAGS) -c $< -o $@

$(B)/agent-obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC-AG,$<)$(CC) $(AGENT_CFLAGS) -DLG_AGENT -c $< -o $@

$(B)/libhost.a: $(HOSTLIB_OBJ)
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

$(B)/bin/luminaguard: $(call host_obj,$(MAIN_SRC)) $(B)/libhost.a
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(HOST_LDFLAGS) -o $@ $^ $(HOST_LIBS)

$(B)/bin/lg-agent: $(AGENT_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(AGENT_LDFLAGS) -o $@ $^

$(B)/tests/%: tests/unit/%.c $(B)/libhost.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -Itests/unit $(HOST_LDFLAGS) -o $@ $< $(B)/libhost.a $(HOST_LIBS)

# A Diff Card shown by a real approver on /dev/tty, for tests/integration/test_approvers.sh.
$(B)/tests/card_demo: tests/tui/card_demo.c $(B)/libhost.a
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(HOST_LDFLAGS) -o $@ $< $(B)/libhost.a $(HOST_LIBS)
all: $(B)/tests/card_demo

unit: $(UNIT_BIN) $(B)/bin/lg-agent
	@LG_AGENT_BIN=$(B)/bin/lg-agent tests/unit/run.sh $(UNIT_BIN)

# libFuzzer needs clang; the harness also builds as a replay tool with a plain main().
# The codec is pure: it needs only the buffer from src/common.
FUZZ_SRC := tests/fuzz/fuzz_proto.c $(PROTO_SRC) src/common/buf.c
build-fuzz/fuzz_proto: $(FUZZ_SRC)
	@mkdir -p $(dir $@)
	clang -std=gnu11 -g -O1 -Isrc -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -o $@ $(FUZZ_SRC)

build-fuzz/replay_proto: $(FUZZ_SRC) tests/fuzz/replay_main.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $(FUZZ_SRC) tests/fuzz/replay_main.c

# The egress policy's parsers are pure too.
FUZZ_NET_SRC := tests/fuzz/fuzz_net.c src/net/allowlist.c src/net/http_head.c src/net/tls_sni.c
build-fuzz/fuzz_net: $(FUZZ_NET_SRC)
	@mkdir -p $(dir $@)
	clang -std=gnu11 -g -O1 -Isrc -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -o $@ $(FUZZ_NET_SRC)

build-fuzz/replay_net: $(FUZZ_NET_SRC) tests/fuzz/replay_main.c $(FUZZ_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -o $@ $(FUZZ_NET_SRC) tests/fuzz/replay_main.c $(PROTO_SRC) src/common/buf.c

fuzz: build-fuzz/fuzz_proto build-fuzz/replay_proto build-fuzz/fuzz_net build-fuzz/replay_net
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find src tests -name '*.[ch]')
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format-check: ok"

check: all
	@tests/run-all.sh

install: all
	install -D -m 0755 $(B)/bin/luminaguard $(DESTDIR)$(PREFIX)/bin/luminaguard
	install -D -m 0755 $(B)/bin/lg-agent $(DESTDIR)$(PREFIX)/libexec/luminaguard/lg-agent
	install -D -m 0755 images/base/build.sh $(DESTDIR)$(PREFIX)/share/luminaguard/images/base/build.sh
	install -D -m 0755 images/full/build.sh $(DESTDIR)$(PREFIX)/share/luminaguard/images/full/build.sh
	for f in extends host-inputs; do \
		install -D -m 0644 images/full/$$f $(DESTDIR)$(PREFIX)/share/luminaguard/images/full/$$f || exit 1; done
	install -D -m 0644 tests/lib.sh $(DESTDIR)$(PREFIX)/share/luminaguard/tests/lib.sh
	install -D -m 0644 tests/security/attack.c $(DESTDIR)$(PREFIX)/share/luminaguard/tests/security/attack.c
	for f in tests/security/*.sh; do \
		install -D -m 0755 $$f $(DESTDIR)$(PREFIX)/share/luminaguard/$$f || exit 1; done

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(B) -name '*.d' 2>/dev/null)
