-- mod_otrdesk: keep operators' own OTR messages to otrdesk off their other
-- devices and out of their message archive.
--
-- otrdesk relays visitors' OTR messages to operators already marked private
-- (XEP-0280) and no-store (XEP-0334). What an operator's client sends back
-- does not pass through otrdesk before the operator's own server handles it:
-- Prosody copies it to the operator's other carbons-enabled resources (their
-- phone shows "?OTR:AAMD..." garbage it cannot decrypt) and stores it in the
-- operator's archive (XEP-0313), where it stays as useless ciphertext.
--
-- This module, loaded on the VirtualHost of the operators' accounts, adds
--
--   <private xmlns='urn:xmpp:carbons:2'/>
--   <no-copy xmlns='urn:xmpp:hints'/>
--   <no-store xmlns='urn:xmpp:hints'/>
--
-- to every message a local user sends whose body is an OTR message (it
-- starts with "?OTR": queries, data messages, fragments and OTR errors alike)
-- and which is addressed to the otrdesk component. Other messages, including
-- plaintext and plaintext with an OTR whitespace tag, are left as they are.
--
-- Configuration (on the operators' VirtualHost or globally):
--
--   otrdesk_component = "chat.example.org"   -- or a list of domains
--
-- Unset, the module marks OTR messages to every component this Prosody
-- serves (hosts declared with Component "..."), which includes otrdesk's.
--
-- Why hooking pre-message/* at priority 10 is enough, checked against
-- Prosody 0.12.3's own modules:
--
-- * A stanza from a local client fires pre-message/bare, pre-message/full or
--   pre-message/host on the sender's host (core/stanza_router.lua,
--   core_post_stanza), before it is routed anywhere.
-- * mod_carbons copies outgoing messages from those three events at
--   priority -0.5 and skips any message carrying <private/> from
--   urn:xmpp:carbons:2 or <no-copy/> from urn:xmpp:hints (its should_copy).
-- * mod_mam archives outgoing messages from pre-message/bare and
--   pre-message/full at priority 0 and skips any message carrying <no-store/>
--   or <no-permanent-store/> from urn:xmpp:hints (its should_store, run from
--   the archive-should-store event). So the hint is honoured and no separate
--   archive hook is needed.
--
-- Higher priorities run first, so the hints are in place before either
-- module looks. They then travel with the message to the component, where
-- they are harmless.

local jid_host = require "util.jid".host;
local st = require "util.stanza";

local xmlns_carbons = "urn:xmpp:carbons:2";
local xmlns_hints = "urn:xmpp:hints";

-- Above mod_carbons (-0.5) and mod_mam (0).
local priority = 10;

local components; -- set of domains, or nil for "every component"

local function load_config()
	components = module:get_option_set("otrdesk_component");
	if components and components:empty() then
		components = nil;
	end
end
load_config();
module:hook_global("config-reloaded", load_config);

local function is_otrdesk(domain)
	if not domain then
		return false;
	end
	if components then
		return components:contains(domain);
	end
	local host = prosody.hosts[domain];
	return host ~= nil and host.type == "component";
end

-- is_otr reports whether any body of the message is an OTR protocol
-- message. libotr starts every one with "?OTR" ("?OTRv3?", "?OTR:",
-- "?OTR|" and "?OTR," fragments, "?OTR Error:"); leading whitespace is
-- allowed in case a client pads the body.
local function is_otr(stanza)
	for body in stanza:childtags("body") do
		local text = body:get_text(); -- nil when the body has child elements
		if text and text:match("^%s*%?OTR") then
			return true;
		end
	end
	return false;
end

local function add_hint(stanza, name, xmlns)
	if not stanza:get_child(name, xmlns) then
		stanza:add_direct_child(st.stanza(name, { xmlns = xmlns }));
	end
end

local function mark(event)
	local stanza = event.stanza;
	if stanza.attr.type == "error" or stanza.attr.type == "groupchat" then
		return;
	end
	if not is_otrdesk(jid_host(stanza.attr.to)) or not is_otr(stanza) then
		return;
	end
	add_hint(stanza, "private", xmlns_carbons);
	add_hint(stanza, "no-copy", xmlns_hints);
	add_hint(stanza, "no-store", xmlns_hints);
	module:log("debug", "Marked an OTR message to %s private and no-store", jid_host(stanza.attr.to));
end

module:hook("pre-message/bare", mark, priority);
module:hook("pre-message/full", mark, priority);
module:hook("pre-message/host", mark, priority);
