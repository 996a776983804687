CREATE TABLE "erasures" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "erasures_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	"request_id" text NOT NULL,
	"contact_ids" integer[] NOT NULL,
	"contact_count" integer NOT NULL,
	"event_count" integer NOT NULL,
	"transaction_id" bigint DEFAULT txid_current() NOT NULL,
	CONSTRAINT "erasures_count_matches" CHECK ("erasures"."contact_count" = cardinality("erasures"."contact_ids"))
);
--> statement-breakpoint
ALTER TABLE "identity_events" DROP CONSTRAINT "identity_events_old_primary_id_contacts_id_fk";
--> statement-breakpoint
ALTER TABLE "identity_events" DROP CONSTRAINT "identity_events_new_primary_id_contacts_id_fk";
--> statement-breakpoint
CREATE INDEX "erasures_transaction_idx" ON "erasures" USING btree ("transaction_id");