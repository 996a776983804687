CREATE TYPE "public"."link_precedence" AS ENUM('primary', 'secondary');--> statement-breakpoint
CREATE TABLE "contacts" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "contacts_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"phone_number" text,
	"email" text,
	"linked_id" integer,
	"link_precedence" "link_precedence" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "contacts_link_consistent" CHECK (("contacts"."link_precedence" = 'primary' and "contacts"."linked_id" is null) or ("contacts"."link_precedence" = 'secondary' and "contacts"."linked_id" is not null)),
	CONSTRAINT "contacts_has_identifier" CHECK ("contacts"."email" is not null or "contacts"."phone_number" is not null),
	CONSTRAINT "contacts_not_self_linked" CHECK ("contacts"."linked_id" <> "contacts"."id")
);
--> statement-breakpoint
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_linked_id_contacts_id_fk" FOREIGN KEY ("linked_id") REFERENCES "public"."contacts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "contacts_email_live_idx" ON "contacts" USING btree ("email") WHERE "contacts"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "contacts_phone_number_live_idx" ON "contacts" USING btree ("phone_number") WHERE "contacts"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "contacts_linked_id_live_idx" ON "contacts" USING btree ("linked_id") WHERE "contacts"."deleted_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "contacts_identity_live_key" ON "contacts" USING btree (coalesce("email", ''),coalesce("phone_number", '')) WHERE "contacts"."deleted_at" is null;