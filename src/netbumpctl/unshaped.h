/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* unshaped.c: the ways a rule's traffic passes unshaped, said in words
 * (the rule's "paths" and "waiting" from netbumpd, paths.h there). */
#pragma once

#include <json-c/json.h>
#include <stdio.h>

/* One line per unshaped path of the rule, and one if it waits for its
 * target, each starting with prefix; how many lines. */
unsigned print_rule_unshaped(FILE *f, const char *prefix, json_object *rule);
/* The same for every rule of an array. */
unsigned print_rules_unshaped(FILE *f, const char *prefix, json_object *rules);
/* For container: rules named by an ID (or by runtime:NAME), a line with
 * the container's name and ID. */
unsigned print_rules_named(FILE *f, json_object *rules);
