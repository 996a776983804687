CREATE TYPE "public"."identity_event_kind" AS ENUM('created_primary', 'created_secondary', 'relinked', 'imported');--> statement-breakpoint
CREATE TABLE "identity_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "identity_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	"request_id" text NOT NULL,
	"kind" "identity_event_kind" NOT NULL,
	"contact_id" integer NOT NULL,
	"old_primary_id" integer,
	"new_primary_id" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "identity_events" ADD CONSTRAINT "identity_events_contact_id_contacts_id_fk" FOREIGN KEY ("contact_id") REFERENCES "public"."contacts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "identity_events" ADD CONSTRAINT "identity_events_old_primary_id_contacts_id_fk" FOREIGN KEY ("old_primary_id") REFERENCES "public"."contacts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "identity_events" ADD CONSTRAINT "identity_events_new_primary_id_contacts_id_fk" FOREIGN KEY ("new_primary_id") REFERENCES "public"."contacts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "identity_events_contact_idx" ON "identity_events" USING btree ("contact_id","id");--> statement-breakpoint
CREATE INDEX "identity_events_request_idx" ON "identity_events" USING btree ("request_id");