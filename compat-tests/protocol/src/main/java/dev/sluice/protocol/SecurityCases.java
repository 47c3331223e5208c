package dev.sluice.protocol;

import org.apache.kafka.common.message.AlterUserScramCredentialsRequestData;
import org.apache.kafka.common.message.AlterUserScramCredentialsRequestData.ScramCredentialDeletion;
import org.apache.kafka.common.message.AlterUserScramCredentialsRequestData.ScramCredentialUpsertion;
import org.apache.kafka.common.message.DescribeUserScramCredentialsRequestData;
import org.apache.kafka.common.protocol.ApiKeys;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static dev.sluice.protocol.Cases.c;

/**
 * SCRAM credential APIs (DescribeUserScramCredentials, AlterUserScramCredentials): Kafka's
 * validation codes, one user and one mechanism per case (Kafka orders users and a user's
 * mechanisms by hash), users named after the run.
 */
final class SecurityCases {
    private SecurityCases() { }

    static void add(Cases k, List<Case> cs, ApiKeys api, short v) {
        switch (api) {
            case DESCRIBE_USER_SCRAM_CREDENTIALS -> describeScram(k, cs, v);
            case ALTER_USER_SCRAM_CREDENTIALS -> alterScram(k, cs, v);
            default -> { }
        }
    }

    static ScramCredentialUpsertion upsert(String user, int mechanism, int iterations) {
        byte[] salt = ("salt-" + user).getBytes(StandardCharsets.UTF_8);
        byte[] salted = new byte[mechanism == 2 ? 64 : 32];
        for (int i = 0; i < salted.length; i++) salted[i] = (byte) (i * 7 + user.length());
        return new ScramCredentialUpsertion().setName(user).setMechanism((byte) mechanism)
            .setIterations(iterations).setSalt(salt).setSaltedPassword(salted);
    }

    static ScramCredentialDeletion deletion(String user, int mechanism) {
        return new ScramCredentialDeletion().setName(user).setMechanism((byte) mechanism);
    }

    static AlterUserScramCredentialsRequestData alter(List<ScramCredentialDeletion> deletions, List<ScramCredentialUpsertion> upsertions) {
        return new AlterUserScramCredentialsRequestData().setDeletions(deletions).setUpsertions(upsertions);
    }

    static DescribeUserScramCredentialsRequestData describe(String... users) {
        List<DescribeUserScramCredentialsRequestData.UserName> names = new ArrayList<>();
        for (String u : users) names.add(new DescribeUserScramCredentialsRequestData.UserName().setName(u));
        return new DescribeUserScramCredentialsRequestData().setUsers(names);
    }

    static void describeScram(Cases k, List<Case> cs, short v) {
        ApiKeys A = ApiKeys.DESCRIBE_USER_SCRAM_CREDENTIALS;
        String user = "pd-" + k.rid + "-scram-d" + v;
        c(cs, A, v, "valid", b -> describe(user))
            .pre(b -> b.send(ApiKeys.ALTER_USER_SCRAM_CREDENTIALS, (short) 0,
                alter(List.of(), List.of(upsert(user, 2, 8192)))));
        c(cs, A, v, "all_users", b -> new DescribeUserScramCredentialsRequestData().setUsers(null)).runOnly("results");
        c(cs, A, v, "unknown_user", b -> describe(k.missing("scram")));
        c(cs, A, v, "duplicate_user", b -> describe(user, user));
    }

    static void alterScram(Cases k, List<Case> cs, short v) {
        ApiKeys A = ApiKeys.ALTER_USER_SCRAM_CREDENTIALS;
        String user = "pd-" + k.rid + "-scram-a" + v;
        c(cs, A, v, "valid", b -> alter(List.of(), List.of(upsert(user, 2, 4096))));
        c(cs, A, v, "replace", b -> alter(List.of(), List.of(upsert(user, 2, 16384))));
        c(cs, A, v, "delete", b -> alter(List.of(deletion(user, 2)), List.of()));
        c(cs, A, v, "delete_missing", b -> alter(List.of(deletion(k.missing("scram"), 1)), List.of()));
        c(cs, A, v, "too_few_iterations", b -> alter(List.of(), List.of(upsert(user + "-few", 1, 4095))));
        c(cs, A, v, "too_many_iterations", b -> alter(List.of(), List.of(upsert(user + "-many", 1, 16385))));
        c(cs, A, v, "unknown_mechanism", b -> alter(List.of(), List.of(upsert(user + "-mech", 3, 4096))));
        c(cs, A, v, "empty_name", b -> alter(List.of(), List.of(upsert("", 1, 4096))));
        c(cs, A, v, "same_user_twice", b -> alter(List.of(deletion(user + "-twice", 1)), List.of(upsert(user + "-twice", 1, 4096))));
        c(cs, A, v, "empty", b -> alter(List.of(), List.of()));
    }
}
