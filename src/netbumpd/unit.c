/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * unit: rules. A unit's cgroup comes from systemd over D-Bus (the unit's
 * ControlGroup property) and changes on every restart (systemd removes and
 * recreates it), so the rule watches the unit's PropertiesChanged signal and
 * points the BPF map at the new cgroup id. A unit that is not running is
 * accepted: its rule applies when it starts. netbump-generator's drop-ins
 * call "netbumpctl set unit:%n" from ExecStartPre=, when the new cgroup
 * exists but the main process has not started: each Set re-reads the
 * cgroup, so the unit is limited from its first packet even if the signal
 * comes later.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <stdio.h>
#include <unistd.h>

#include "access.h"
#include "bpf.h"
#include "cgroup-util.h"
#include "log.h"
#include "manager.h"
#include "scope-map.h"
#include "unit.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"

/* The D-Bus interface that carries ControlGroup for this kind of unit. */
static const char *unit_interface(const char *unit) {
	static const struct {
		const char *suffix, *iface;
	} map[] = {
		{ ".service", "org.freedesktop.systemd1.Service" }, { ".scope", "org.freedesktop.systemd1.Scope" },
		{ ".slice", "org.freedesktop.systemd1.Slice" },     { ".socket", "org.freedesktop.systemd1.Socket" },
		{ ".mount", "org.freedesktop.systemd1.Mount" },     { ".swap", "org.freedesktop.systemd1.Swap" },
	};
	size_t l = strlen(unit);

	for (size_t k = 0; k < ELEMENTSOF(map); k++) {
		size_t sl = strlen(map[k].suffix);
		if (l > sl && streq(unit + l - sl, map[k].suffix))
			return map[k].iface;
	}
	return NULL;
}

int manager_bus_open(Manager *m) {
	sd_bus_error error = SD_BUS_ERROR_NULL;
	int r;

	if (m->bus)
		return 0;
	r = sd_bus_open_system(&m->bus);
	if (r < 0)
		return r;
	r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		goto fail;
	/* Without a subscriber systemd sends no unit signals. */
	r = sd_bus_call_method(m->bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", &error, NULL, NULL);
	sd_bus_error_free(&error);
	if (r < 0)
		goto fail;
	return 0;
fail:
	m->bus = sd_bus_flush_close_unref(m->bus);
	return r;
}

/* Why manager_bus_open() failed, in words: on a host without systemd
 * (sd_booted(3): no /run/systemd/system) the D-Bus error itself, ENOENT for
 * the bus socket, would say nothing useful (unit_rule_prepare() returns
 * -EOPNOTSUPP then, and the caller leaves the errno out). */
static const char *bus_open_failure(void) {
	if (sd_booted() <= 0)
		return "systemd is not running on this host (not the service manager): unit: targets need systemd; "
		       "limit the processes with cgroup:, pid: or user@ instead";
	return "cannot reach systemd over D-Bus";
}

/* The unit's cgroup path now, "" when it has none (not running). */
static int unit_cgroup(Manager *m, Rule *rule, char **ret) {
	sd_bus_error error = SD_BUS_ERROR_NULL;
	int r;

	r = sd_bus_get_property_string(m->bus, SD_DEST, rule->unit_path, unit_interface(rule->target.unit),
				       "ControlGroup", &error, ret);
	sd_bus_error_free(&error);
	return r;
}

/* Points the rule at the cgroup cg (relative to the mount; NULL or "":
 * none now), as a unit's, machine's or container's cgroup changes. */
int rule_follow_cgroup(Manager *m, Rule *rule, const char *cg_in) {
	_cleanup_free_ char *cg = strdup(cg_in ?: ""), *abs = NULL;
	uint64_t id = 0;

	if (!cg)
		return -ENOMEM;
	if (*cg) {
		if (!cg_path_is_inside(cg, m->cgroup_root)) {
			log_struct(LOG_WARNING,
				   LOG_FIELDS({ "RULE", rule->name }, { "TARGET", rule->name },
					      { "UID", LOG_UINT(rule->owner) }),
				   "%s runs in %s, outside the cgroup root %s: not limited.", rule->name, cg,
				   m->cgroup_root);
			cg[0] = '\0';
		} else if (asprintf(&abs, "%s%s", m->cgroup_mount, cg) < 0)
			return -ENOMEM;
		else if (cg_get_id(abs, &id) < 0)
			id = 0; /* gone again already */
	}
	/* One cgroup, one rule: where a cgroup: rule is on the unit's cgroup
	 * already, that rule applies, and this one waits. */
	/* A scoped rule or a deny/allow is extra to the cgroup's one rule. */
	bool scoped = rule->remote || rule->access;
	Rule *twin = scoped ? NULL : rules_find_cgroup(m, id, rule);
	bool waits = twin != NULL;
	if (twin) {
		log_struct(LOG_WARNING,
			   LOG_FIELDS({ "RULE", rule->name }, { "TARGET", rule->name }, { "UID", LOG_UINT(rule->owner) }),
			   "%s runs in %s, which has the rule %s: that one applies.", rule->name, cg, twin->name);
		id = 0;
	}
	if (id == rule->key)
		return 0;

	if (rule->key && rule->minor && !scoped)
		(void)manager_bpf_del_rule(m, rule);
	rules_rekey(m, rule, id);
	/* Where it nests from now on (rules made later see it there). */
	free(rule->nest_path);
	rule->nest_path = id ? strdup(cg) : NULL;
	if (rule->key && rule->minor && !scoped)
		(void)manager_bpf_set_rule(m, rule);
	if (scoped && m->skel && (rule->sid || (rule->access && rule->access->sid)) &&
	    scope_keys_update(m, rule) < 0)
		log_struct(LOG_WARNING,
			   LOG_FIELDS({ "RULE", rule->name }, { "TARGET", rule->name }, { "UID", LOG_UINT(rule->owner) }),
			   "%s --remote %s: cannot follow it to cgroup %s.", rule->name, rule->remote, cg);
	if (rule->minor || scoped)
		manager_bpf_bump_gen(m);
	/* The journal fields of the Set that made the rule, so that one
	 * journalctl RULE=unit:NAME shows it and every cgroup it followed. */
	if (waits)
		; /* said above */
	else if (id)
		log_struct(LOG_INFO,
			   LOG_FIELDS({ "RULE", rule->name }, { "TARGET", rule->name }, { "UID", LOG_UINT(rule->owner) }),
			   "%s: limiting cgroup %s.", rule->name, cg);
	else
		log_struct(LOG_INFO,
			   LOG_FIELDS({ "RULE", rule->name }, { "TARGET", rule->name }, { "UID", LOG_UINT(rule->owner) }),
			   "%s: not running; the limit applies when it starts.", rule->name);
	return 1;
}

/* Points the rule at the unit's current cgroup (key 0: none). */
static int unit_refresh(Manager *m, Rule *rule) {
	_cleanup_free_ char *cg = NULL;
	int r;

	r = unit_cgroup(m, rule, &cg);
	if (r < 0)
		return r;
	return rule_follow_cgroup(m, rule, cg);
}

static int properties_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
	Rule *rule = userdata;

	(void)unit_refresh(rule->manager, rule);
	return 0;
}

int unit_rule_prepare(Manager *m, Rule *rule, const char **ret_reason) {
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path;
	int r;

	r = manager_bus_open(m);
	if (r < 0)
		return *ret_reason = bus_open_failure(), sd_booted() > 0 ? r : -EOPNOTSUPP;

	/* LoadUnit also answers for units that are not running (or do not
	 * exist yet: they may be created later). */
	r = sd_bus_call_method(m->bus, SD_DEST, SD_PATH, SD_MANAGER, "LoadUnit", &error, &reply, "s",
			       rule->target.unit);
	if (r < 0) {
		*ret_reason = "systemd refused to load the unit";
		sd_bus_error_free(&error);
		return r;
	}
	r = sd_bus_message_read(reply, "o", &path);
	if (r >= 0) {
		rule->unit_path = strdup(path);
		if (!rule->unit_path)
			r = -ENOMEM;
	}
	sd_bus_message_unref(reply);
	if (r < 0)
		return *ret_reason = "unexpected reply from systemd", r;

	r = sd_bus_match_signal(m->bus, &rule->unit_watch, SD_DEST, rule->unit_path,
				"org.freedesktop.DBus.Properties", "PropertiesChanged", properties_changed, rule);
	if (r < 0)
		return *ret_reason = "cannot watch the unit", r;

	rule->key = 0;
	r = unit_refresh(m, rule);
	if (r < 0)
		return *ret_reason = "cannot read the unit's cgroup", r;
	return 0;
}

/* Called on every Set of an existing unit rule (ExecStartPre= of a
 * restarted unit) and after the maps point at the rule. */
int unit_rule_sync(Manager *m, Rule *rule) {
	if (!m->bus || !rule->unit_path)
		return 0;
	return unit_refresh(m, rule);
}

void unit_rule_done(Rule *rule) {
	rule->unit_watch = sd_bus_slot_unref(rule->unit_watch);
	free(rule->unit_path);
	rule->unit_path = NULL;
}

/* ---- transient scopes for pid: rules where systemd owns the tree ---- */

/* Where systemd is PID 1 and we classify its whole tree, systemd is the
 * only writer of its cgroups (systemd's "cgroup delegation" rules): a
 * process is moved by asking systemd for a transient scope in
 * netbump.slice, and moved back by asking it to attach it to its unit. */
bool manager_use_scopes(Manager *m) {
	return sd_booted() > 0 && streq(m->cgroup_root, "/");
}

static int append_pids(sd_bus_message *msg, const pid_t *pids, size_t n) {
	int r = sd_bus_message_open_container(msg, 'r', "sv");
	if (r >= 0)
		r = sd_bus_message_append(msg, "s", "PIDs");
	if (r >= 0)
		r = sd_bus_message_open_container(msg, 'v', "au");
	if (r >= 0)
		r = sd_bus_message_open_container(msg, 'a', "u");
	for (size_t k = 0; r >= 0 && k < n; k++)
		r = sd_bus_message_append(msg, "u", (uint32_t)pids[k]);
	if (r >= 0)
		r = sd_bus_message_close_container(msg);
	if (r >= 0)
		r = sd_bus_message_close_container(msg);
	if (r >= 0)
		r = sd_bus_message_close_container(msg);
	return r;
}

int scope_start(Manager *m, Rule *rule, const pid_t *pids, size_t n, const char **ret_reason) {
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *msg = NULL, *reply = NULL;
	char name[64], desc[96];
	int r;

	r = manager_bus_open(m);
	if (r < 0)
		return *ret_reason = bus_open_failure(), r;
	snprintf(name, sizeof(name), "netbump-pid-%d.scope", (int)rule->target.pid);
	snprintf(desc, sizeof(desc), "netbump limit for process %d", (int)rule->target.pid);

	r = sd_bus_message_new_method_call(m->bus, &msg, SD_DEST, SD_PATH, SD_MANAGER, "StartTransientUnit");
	if (r >= 0)
		r = sd_bus_message_append(msg, "ss", name, "fail");
	if (r >= 0)
		r = sd_bus_message_open_container(msg, 'a', "(sv)");
	if (r >= 0)
		r = sd_bus_message_append(msg, "(sv)(sv)(sv)(sv)", "Slice", "s", "netbump.slice", "Delegate", "b", 1,
					  "Description", "s", desc, "CollectMode", "s", "inactive-or-failed");
	if (r >= 0)
		r = append_pids(msg, pids, n);
	if (r >= 0)
		r = sd_bus_message_close_container(msg);
	if (r >= 0)
		r = sd_bus_message_append(msg, "a(sa(sv))", 0);
	if (r < 0) {
		sd_bus_message_unref(msg);
		return *ret_reason = "cannot build the request to systemd", r;
	}
	r = sd_bus_call(m->bus, msg, 0, &error, &reply);
	sd_bus_message_unref(msg);
	sd_bus_message_unref(reply);
	if (r < 0) {
		log_struct(LOG_WARNING,
			   LOG_FIELDS({ "RULE", rule->name }, { "TARGET", rule->name }, { "UID", LOG_UINT(rule->owner) }),
			   "StartTransientUnit %s: %s", name, error.message ?: strerror(-r));
		sd_bus_error_free(&error);
		return *ret_reason = "systemd refused the scope", r;
	}
	rule->scope = strdup(name);
	if (!rule->scope)
		return -ENOMEM;

	/* The job runs asynchronously: wait (bounded) until systemd moved the
	 * process and the scope has its cgroup. */
	for (int k = 0; k < 200; k++) {
		_cleanup_free_ char *cg = NULL, *path = NULL;
		char *p = NULL;

		r = sd_bus_call_method(m->bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", &error, &reply, "s", name);
		sd_bus_error_free(&error);
		if (r >= 0) {
			const char *o;
			if (sd_bus_message_read(reply, "o", &o) >= 0)
				path = strdup(o);
			reply = sd_bus_message_unref(reply);
		}
		if (path && sd_bus_get_property_string(m->bus, SD_DEST, path, "org.freedesktop.systemd1.Scope",
						       "ControlGroup", &error, &cg) >= 0 &&
		    cg && *cg && cg_pid_get_path(rule->target.pid, &p) >= 0 && streq(p, cg)) {
			free(p);
			if (asprintf(&rule->cgroup_abs, "%s%s", m->cgroup_mount, cg) < 0)
				return -ENOMEM;
			return 0;
		}
		free(p);
		sd_bus_error_free(&error);
		usleep(10000);
	}
	return *ret_reason = "systemd did not move the process in time", -ETIMEDOUT;
}

/* The unit a process belongs to now, so that unset can hand it back. */
char *unit_of_pid(Manager *m, pid_t pid) {
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char *id = NULL;
	const char *path;

	if (manager_bus_open(m) < 0)
		return NULL;
	if (sd_bus_call_method(m->bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnitByPID", &error, &reply, "u",
			       (uint32_t)pid) >= 0 &&
	    sd_bus_message_read(reply, "o", &path) >= 0)
		(void)sd_bus_get_property_string(m->bus, SD_DEST, path, "org.freedesktop.systemd1.Unit", "Id", &error,
						 &id);
	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	return id;
}

int scope_give_back(Manager *m, const char *unit, pid_t pid) {
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *msg = NULL;
	int r;

	r = sd_bus_message_new_method_call(m->bus, &msg, SD_DEST, SD_PATH, SD_MANAGER, "AttachProcessesToUnit");
	if (r >= 0)
		r = sd_bus_message_append(msg, "ss", unit, "");
	if (r >= 0)
		r = sd_bus_message_append(msg, "au", 1, (uint32_t)pid);
	if (r >= 0)
		r = sd_bus_call(m->bus, msg, 0, &error, NULL);
	sd_bus_message_unref(msg);
	sd_bus_error_free(&error);
	return r;
}

void scope_stop(Manager *m, Rule *rule) {
	sd_bus_error error = SD_BUS_ERROR_NULL;

	if (!rule->scope || !m->bus)
		return;
	(void)sd_bus_call_method(m->bus, SD_DEST, SD_PATH, SD_MANAGER, "StopUnit", &error, NULL, "ss", rule->scope,
				 "replace");
	sd_bus_error_free(&error);
}
